"""Reading a run directory: Locust's CSV files (any `--csv` prefix), the engine's sessions and histograms, the
manifest and the scenario's copy, into one RunData the rest of the report reads. Nothing here judges or draws."""
