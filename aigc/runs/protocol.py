"""The run-directory protocol between the trainer and the UI: paths, atomic writes, readers, lock.

No TensorFlow here: the UI imports this module on every rerun.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

STATES = ("starting", "running", "finished", "stopped", "failed")
ACTIVE_STATES = ("starting", "running")
DEFAULT_RUNS_ROOT = Path("runs")
LOCK_NAME = ".train.lock"


@dataclass(frozen=True)
class RunPaths:
    """Every file of one run directory."""

    root: Path

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def generator(self) -> Path:
        return self.root / "generator.keras"

    @property
    def discriminator(self) -> Path:
        return self.root / "discriminator.keras"

    @property
    def ckpt(self) -> Path:
        return self.root / "ckpt"

    @property
    def tb(self) -> Path:
        return self.root / "tb"

    @property
    def log(self) -> Path:
        return self.root / "train.log"

    @property
    def stop(self) -> Path:
        return self.root / "STOP"

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    def sample_path(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:04d}.png"

    def sample_files(self) -> list[Path]:
        """Per-epoch sample grids, oldest first."""
        return sorted(self.samples.glob("epoch_*.png")) if self.samples.is_dir() else []


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then os.replace onto path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; other readers (a container's user) need the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def overwrite_json_in_place(path: Path, data: dict) -> None:
    """Last resort when the disk is full: rewrite path's existing blocks (not atomic; used only to record a failure)."""
    payload = json.dumps(_finite(data), sort_keys=True).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_json(path: Path, data: dict) -> None:
    """Atomically replace path with data as JSON (NaN/inf written as null)."""
    atomic_write_bytes(path, json.dumps(_finite(data), indent=1, sort_keys=True).encode())


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def append_metrics(path: Path, record: dict) -> None:
    """Append one JSON line; a crash mid-write leaves a partial last line that readers skip."""
    line = (json.dumps(_finite(record), sort_keys=True) + "\n").encode()
    with open(path, "ab+") as handle:
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line  # a killed writer left a partial line: do not glue this record to it
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def read_json(path: Path) -> dict | None:
    """The JSON object at path, or None when missing, partial or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def read_metrics(path: Path) -> list[dict]:
    """All complete, valid records of a metrics.jsonl (partial or corrupt lines skipped)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    records = []
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # a partial last line: the writer is mid-append
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                records.append(record)
    return records


def pid_alive(pid) -> bool:
    """True when a process with this pid exists (zombies count as dead)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def read_status(paths: RunPaths) -> dict | None:
    """status.json, with state 'failed' substituted when a 'running' trainer's pid is gone."""
    status = read_json(paths.status)
    if status is None:
        return None
    if status.get("state") in ACTIVE_STATES and not pid_alive(status.get("pid")):
        status = dict(status, state="failed", error=status.get("error") or "the trainer process ended unexpectedly")
        status["interrupted"] = True
    return status


class TrainingLock:
    """One training job at a time across every process: an flock'd file recording the holder.

    The kernel drops an flock when its process dies, so a lock left by a dead process is
    free again by construction; the pid inside is only for display.
    """

    def __init__(self, runs_root: Path = DEFAULT_RUNS_ROOT):
        self.path = Path(runs_root) / LOCK_NAME
        self._fd = None

    def acquire(self, run_dir: Path | None = None) -> bool:
        """Take the lock without waiting; False when another live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        payload = json.dumps({"pid": os.getpid(), "run_dir": str(run_dir or ""), "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload.encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def holder(self) -> dict | None:
        """{'pid', 'run_dir', 'since'} of the live holder, or None when nobody trains."""
        if not self.path.exists():
            return None
        fd = os.open(self.path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return read_json(self.path) or {"pid": None, "run_dir": "", "since": None}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def __enter__(self):
        if not self.acquire():
            holder = self.holder() or {}
            raise RuntimeError(f"another training job is running (pid {holder.get('pid')}, {holder.get('run_dir')})")
        return self

    def __exit__(self, *exc):
        self.release()


def list_runs(runs_root: Path = DEFAULT_RUNS_ROOT) -> list[RunPaths]:
    """Run directories under runs_root that have a status.json, newest first."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [RunPaths(p) for p in root.iterdir() if p.is_dir() and (p / "status.json").exists()]
    return sorted(runs, key=lambda r: r.status.stat().st_mtime, reverse=True)


def request_stop(paths: RunPaths) -> None:
    """Ask a running trainer to stop gracefully (it checks after every step)."""
    atomic_write_bytes(paths.stop, b"stop requested\n")
