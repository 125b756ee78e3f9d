"""SIGTERM from the first instant of `python -m aigc`: remembered, not fatal, until a command decides what it means.

The trainer takes the lock, plans the run and loads TensorFlow before its training loop listens for
stops; a SIGTERM in those seconds used to kill it with exit 143 and leave the run 'created', which
readers then called 'failed: ended without saying why'. Caught here, the trainer records the stop
instead ('stopped', nothing trained, nothing lost); every other command gets the default back.
"""
from __future__ import annotations

import signal
import sys

RECEIVED: list[str] = []  # signal names received before a command took over


def _remember(signum, _frame) -> None:
    RECEIVED.append(signal.Signals(signum).name)


def catch_early() -> None:
    """Remember SIGTERM instead of dying of it (call first thing in the process)."""
    signal.signal(signal.SIGTERM, _remember)


def release() -> None:
    """For commands without a stop protocol: SIGTERM ends the process again, and one already received does now."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if RECEIVED:
        sys.exit(128 + signal.SIGTERM)
