"""Work-arounds for Locust behaviour that costs the load generators, applied once when the engine is loaded."""

from __future__ import annotations

import functools

from locust import argument_parser


def cache_locust_default_arguments() -> None:
    """Build Locust's default options once per process instead of at every option of every spawn message.

    A Locust worker handling a spawn message (locust/runners.py, WorkerRunner.handle_message, Locust 2.47)
    calls argument_parser.default_args_dict() once per option the master sent: each call builds Locust's whole
    argument parser, about a hundred times a message. The pool shape changes the user count every second, so a
    worker spent a third of its CPU there. The defaults cannot change within a process and both of Locust's
    callers only test membership, so one dict serves them all."""
    if not hasattr(argument_parser.default_args_dict, "cache_info"):  # once: a cached function has cache_info
        argument_parser.default_args_dict = functools.cache(argument_parser.default_args_dict)
