"""Child processes a run starts (the embedded platform, Locust) in sessions of their own, never orphaned.

A child in its own session is out of reach of a terminal's Ctrl-C and of `timeout`'s signal, so the run must
stop it itself. Two moments would lose it: a stop signal (Ctrl-C, SIGTERM, SIGHUP) raising while Popen waits
for the child's exec (Popen never returns its pid), and the child's leader ending before the processes it
forked into its group (Locust's `--processes` workers, a seeding pool).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)  # `kill`, `timeout`, a container stop; a closed terminal
HELD_SIGNALS = (signal.SIGINT, *STOP_SIGNALS)  # and Ctrl-C


def start_in_own_session(command: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """subprocess.Popen(command, start_new_session=True, **popen), with the stop signals held until it returns.
    A stop signal held meanwhile ends the child's whole group at once, then acts as it would have (a Ctrl-C
    raises KeyboardInterrupt here)."""
    if threading.current_thread() is not threading.main_thread():
        return subprocess.Popen(command, start_new_session=True, **popen)  # handlers belong to the main thread
    held: list[int] = []
    holdable = [sig for sig in HELD_SIGNALS if signal.getsignal(sig) is not None]  # None: not Python's to restore
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in holdable}
    try:
        process = subprocess.Popen(command, start_new_session=True, **popen)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        end_process_group(process)
        signal.raise_signal(held[-1])  # the handler now in place runs before this returns
    return process


def end_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL whatever is left in the child's process group (all of it, if the child still runs), then reap the
    child. The group's id is the child's pid (start_new_session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
