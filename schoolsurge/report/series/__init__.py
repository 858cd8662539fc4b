"""A run's figures over time: the charts' time axis (bins of whole run seconds on the scenario clock), latency
percentiles merged per bin from the engine's histograms, and the reconnection bubble (retries)."""
