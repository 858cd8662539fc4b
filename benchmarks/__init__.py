"""Benchmarks: `python -m benchmarks.bench_platform` (see `make bench`)."""
