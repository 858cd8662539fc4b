"""Options of the run's Prometheus side, shared by the locustfile and `schoolsurge run`/`capacity`.

--metrics-port P      the run's /metrics (engine/exporter.py): 0 = a free port (default), `off` = none
--metrics-host H      where it listens (default 127.0.0.1: loopback only)
--metrics-linger S    serve the final figures S seconds after the results are written (a last scrape)
--target-metrics URL  the target's Prometheus endpoint, scraped every few seconds (engine/target_metrics.py);
                      default: the target's /metrics; `off` = not scraped
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from schoolsurge.parameters import seconds_at_least_zero

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


def add_monitoring_arguments(add: Callable[..., Any], locust: bool = True) -> None:
    """The options, with their defaults in the locustfile (`locust`) or none (`schoolsurge run` passes on only
    what was given)."""
    add(
        "--metrics-port",
        type=metrics_port,
        default=0 if locust else None,
        help="port of the run's Prometheus /metrics (0: a free one, written to the manifest as metrics_url; off)",
    )
    add("--metrics-host", default="127.0.0.1" if locust else None, help="address /metrics listens on (127.0.0.1)")
    add(
        "--metrics-linger",
        type=seconds_at_least_zero,
        default=0.0 if locust else None,
        help="seconds /metrics keeps serving the final figures after the results are written (0)",
    )
    add(
        "--target-metrics",
        type=target_metrics_url,
        default=None,
        help="the target's Prometheus endpoint, scraped every 5 s (default: the target's /metrics; off)",
    )


def forwarded_monitoring_arguments(args: argparse.Namespace) -> list[str]:
    """The options given to `schoolsurge run`, for Locust's command line."""
    forwarded: list[str] = []
    for option, attribute in (
        ("--metrics-port", "metrics_port"),
        ("--metrics-host", "metrics_host"),
        ("--metrics-linger", "metrics_linger"),
        ("--target-metrics", "target_metrics"),
    ):
        value = getattr(args, attribute, None)
        if value is not None:
            forwarded += [option, OFF if attribute == "metrics_port" and value == METRICS_PORT_OFF else str(value)]
    return forwarded
