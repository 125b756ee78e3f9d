"""A run's life: its states, the allowed transitions, and the state a reader should believe.

status.json says what the trainer last wrote; the lock says whether it still lives. A run
whose status says running but whose trainer no longer holds the lock was interrupted.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from aigc.runs.files import atomic_write_bytes, read_json
from aigc.runs.layout import RunPaths
from aigc.runs.lock import TrainingLock
from aigc.settings import runs_root

STATES = ("created", "running", "stopping", "stopped", "finished", "failed")
ACTIVE_STATES = ("created", "running", "stopping")
RESUMABLE_STATES = ("stopped", "failed")
TRANSITIONS = {
    None: {"created"},
    "created": {"created", "running", "stopped", "finished", "failed"},  # finished: a resume with nothing to train
    "running": {"running", "stopping", "stopped", "finished", "failed"},
    "stopping": {"stopping", "stopped", "finished", "failed"},
    "stopped": {"created"},
    "failed": {"created"},
    "finished": {"created"},  # train more epochs: the same run starts again
}
INTERRUPTED = "the trainer process ended without saying why (killed, or the machine restarted)"


class LifecycleError(Exception):
    """A state change the lifecycle does not allow (a bug in the writer, not a user error)."""


def check_transition(old: str | None, new: str) -> None:
    """Raise LifecycleError unless a run may go from state old to state new."""
    if new not in STATES:
        raise LifecycleError(f"unknown run state {new!r}")
    if new not in TRANSITIONS.get(old, set()):
        raise LifecycleError(f"a run cannot go from {old!r} to {new!r}")


def holds_lock(holder: dict | None, paths: RunPaths) -> bool:
    """True when the lock holder's run is this run."""
    if not holder or not holder.get("run_dir"):
        return False
    with contextlib.suppress(OSError):
        return Path(holder["run_dir"]).resolve() == paths.root.resolve()
    return False


PROBE = object()  # read_status's default: probe the lock for the holder


def read_status(paths: RunPaths, *, holder=PROBE, lock: TrainingLock | None = None) -> dict | None:
    """status.json as a reader should believe it: liveness from the lock, 'stopping' once a stop is asked.

    holder is the lock holder as already probed (None: nobody trains); by default `lock`, else
    the runs root's lock, is probed here.
    """
    status = read_json(paths.status)
    if status is None:
        return None
    if holder is PROBE:
        holder = (lock or TrainingLock(runs_root())).holder()
    alive = holds_lock(holder, paths)
    state = status.get("state")
    if state not in STATES or (state in ACTIVE_STATES and not alive):
        return dict(status, state="failed", error=status.get("error") or INTERRUPTED, interrupted=True, eta_s=None)
    if state == "running" and paths.stop.exists():
        return dict(status, state="stopping")
    return status


def request_stop(paths: RunPaths) -> None:
    """Ask a running trainer to stop gracefully (it checks after every step)."""
    atomic_write_bytes(paths.stop, b"stop requested\n")


def remove_leftovers(paths: RunPaths) -> list[str]:
    """Delete what killed writers left (temporary files, ckpt-N_temp folders); call only while holding the lock."""
    removed = []
    for leftover in paths.leftovers():
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover.name)
    return removed


def delete_run(paths: RunPaths, *, lock: TrainingLock) -> str | None:
    """Remove a run folder unless its trainer runs; returns a reason when it refused."""
    if holds_lock(lock.holder(), paths):
        return f"{paths.name} is training; stop it first"
    if not paths.status.exists():
        return f"{paths.name} is not a run folder"
    shutil.rmtree(paths.root)
    return None
