"""What a hosted server keeps: a cap on finished runs (oldest pruned first) and a free-disk floor per job.

No Streamlit and no TensorFlow. Each run leaves 25-44 MB; without a cap a public demo fills
its disk. Only runs that ended (finished, stopped, failed) are pruned, and never the run whose
trainer holds the lock (the lock, not status.json, is the proof that a job runs).
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

from aigc.serve.hosting import Policy
from aigc.runs.layout import RunPaths, list_runs
from aigc.runs.lifecycle import delete_run, holds_lock, read_status
from aigc.runs.lock import TrainingLock

LOG = logging.getLogger("aigc.serve.retention")
ENDED_STATES = ("finished", "stopped", "failed")
MB = 1024 * 1024


def prune_runs(root: Path, *, keep: int, spare: RunPaths | None = None) -> list[str]:
    """Delete the oldest ended runs beyond the newest `keep` (and never `spare`); returns the names removed."""
    keep = max(0, int(keep))
    lock = TrainingLock(root)
    holder = lock.holder()
    ended = []
    for paths in list_runs(root):  # newest first
        status = read_status(paths, holder=holder, lock=lock) or {}
        if status.get("state") in ENDED_STATES and not holds_lock(holder, paths) and not _same(paths, spare):
            ended.append(paths)
    removed = []
    for paths in reversed(ended[keep:]):
        try:
            problem = delete_run(paths, lock=lock)  # checks the lock again, just before deleting
        except OSError as error:
            LOG.warning("could not prune run %s: %s", paths.name, error)
            continue
        if problem is None:
            removed.append(paths.name)
    if removed:
        LOG.info("pruned %d old run(s): %s", len(removed), ", ".join(removed))
    return removed


def _same(paths: RunPaths, other: RunPaths | None) -> bool:
    return other is not None and paths.root.resolve() == Path(other.root).resolve()


def free_mb(root: Path) -> float:
    """Free space in MB on the file system of root (or of its nearest existing parent)."""
    folder = Path(root)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free / MB


def disk_problem(root: Path, *, min_free_mb: int) -> str | None:
    """A one-line message for people when less than min_free_mb is free under root; else None."""
    if min_free_mb <= 0:
        return None
    try:
        available = free_mb(root)
    except OSError:
        return None  # cannot tell: let the trainer's own full-disk handling speak
    if available < min_free_mb:
        return (f"not enough free disk space on the server for a training job ({available:.0f} MB free, "
                f"{min_free_mb} MB needed); try again later")
    return None


def make_room(root: Path, policy: Policy, *, resuming: RunPaths | None = None) -> str | None:
    """Before a job starts: prune ended runs to the policy's cap, counting the new (or resumed) one, then check the disk.

    Returns a one-line message when the job must not start (too little disk), else None.
    """
    if policy.keep_runs > 0:
        prune_runs(root, keep=policy.keep_runs - 1, spare=resuming)
    return disk_problem(root, min_free_mb=policy.min_free_mb)

