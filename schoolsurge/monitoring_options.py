"""The types of the run's Prometheus options (declared in the option table, options.py):

--metrics-port P      the run's /metrics (engine/exporter.py): 0 = a free port, `off` = none
--metrics-host H      where it listens (loopback by default)
--metrics-linger S    serve the final figures S seconds after the results are written (a last scrape)
--target-metrics URL  the target's Prometheus endpoint, scraped every few seconds (engine/target_metrics.py),
                      by default the target's /metrics; `off` = not scraped
"""

from __future__ import annotations

import argparse

OFF = "off"
METRICS_PORT_OFF = -1


def metrics_port(text: str) -> int:
    """--metrics-port: a TCP port, 0 for a free one, or `off`."""
    if text.strip().lower() == OFF:
        return METRICS_PORT_OFF
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, 0 or off, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535, got {text}")
    return port


def target_metrics_url(text: str) -> str:
    """--target-metrics: an http(s) URL, or `off`."""
    if text.strip().lower() == OFF:
        return OFF
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http(s) URL or off, got {text!r}")
    return text
