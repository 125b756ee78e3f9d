"""The trainer's side of the run-directory protocol: status, metrics, log, TensorBoard, stop requests."""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from aigc.runs.files import append_metrics, atomic_write_json
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import ACTIVE_STATES, STATES, check_transition


class StopFlag:
    """Set by SIGTERM/SIGINT or a STOP file; checked after every step."""

    def __init__(self, stop_file: Path):
        from aigc.signals import RECEIVED  # a SIGTERM before this flag existed (python -m aigc catches it early)

        self.stop_file = stop_file
        self.signalled = RECEIVED[0] if RECEIVED else None
        self.install()

    def install(self) -> None:
        """Take SIGTERM and SIGINT (again: a MultiWorkerMirroredStrategy's preemption notifier takes SIGTERM)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum, _frame):
        self.signalled = signal.Signals(signum).name

    def reason(self) -> str | None:
        if self.signalled:
            return self.signalled
        return "STOP file" if self.stop_file.exists() else None


class RunWriter:
    """Owns status.json, metrics.jsonl, train.log and TensorBoard events of one run."""

    def __init__(self, paths: RunPaths, status: dict, *, state: str | None = None):
        # The caller holds the lock, so a previous 'running' (or other active) state was interrupted.
        self.paths = paths
        self.status = dict(status, state="failed" if state in ACTIVE_STATES or state not in (None, *STATES) else state)
        self._tb = None

    def log(self, message: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {message}"
        print(line, flush=True)
        if not _stdout_is(self.paths.log):  # the app sends stdout to train.log already: no double lines
            with open(self.paths.log, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")

    def update(self, **fields) -> None:
        """Merge fields into status.json (atomically); a state change must be one the lifecycle allows."""
        if "state" in fields:
            check_transition(self.status.get("state"), fields["state"])
        self.status.update(fields, updated_at=time.time())
        atomic_write_json(self.paths.status, self.status)

    def metrics(self, record: dict) -> None:
        append_metrics(self.paths.metrics, record)
        self._scalars(record)

    def _scalars(self, record: dict) -> None:
        import tensorflow as tf

        if self._tb is None:
            self._tb = tf.summary.create_file_writer(str(self.paths.tb))
        prefix = "epoch/" if record.get("kind") == "epoch" else "step/"
        with self._tb.as_default(step=int(record["step"])):
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "epoch", "time"):
                    tf.summary.scalar(prefix + key, value)
        self._tb.flush()


def _stdout_is(path: Path) -> bool:
    """True when this process's stdout is the file at path."""
    try:
        out, target = os.fstat(sys.stdout.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    return (out.st_dev, out.st_ino) == (target.st_dev, target.st_ino)
