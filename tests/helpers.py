"""Helpers shared by several test files (plain functions, not fixtures)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from aigc.runs.lock import TrainingLock


def stop_trainers(runs: Path, timeout: float = 30) -> None:
    """SIGTERM (then SIGKILL) the trainer holding the lock of this runs folder, if any."""
    holder = TrainingLock(runs).holder()
    pid = (holder or {}).get("pid")
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while TrainingLock(runs).holder() and time.time() < deadline:
        time.sleep(0.2)
    if TrainingLock(runs).holder():
        os.kill(pid, signal.SIGKILL)
