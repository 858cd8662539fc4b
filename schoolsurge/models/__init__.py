"""Pure models: scenario -> expected arrivals and concurrency. No I/O here."""
