"""One training job at a time under a runs root: an open-file-description lock held for the trainer's life.

The kernel drops the lock when the holding process dies, so there is never a stale lock to
recover, and the lock is the only proof that a job runs (a pid is information: pids are
reused). Probing uses F_OFD_GETLK, which tests without taking the lock, so watchers never
make a real acquisition fail, and it needs only read access (a read-only runs folder works).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import struct
import time
from pathlib import Path

from aigc.runs.files import read_json

LOCK_NAME = ".train.lock"
_FLOCK = "hhqqi4x"  # struct flock on Linux x86-64 and arm64: type, whence, start, len, pid (+ padding)

EXIT_BUSY = 3  # the exit code of `python -m aigc train` when another job holds the lock (the launcher reads it)


def _whole_file(kind: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, 0, 0, 0)


class TrainingLock:
    """The lock file at the runs root; acquire() takes it for a run, holder() only looks."""

    def __init__(self, runs_root: Path):
        self.path = Path(runs_root) / LOCK_NAME
        self._fd = None

    def acquire(self, run_dir: Path | None = None) -> bool:
        """Take the lock without waiting; False when another live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _whole_file(fcntl.F_WRLCK))
        except OSError:
            os.close(fd)
            return False
        payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "run_dir": str(run_dir or ""),
                              "since": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, payload.encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back (closing the file releases it; the kernel does the same at exit)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def is_held(self) -> bool:
        """True while some process holds the lock; never takes it, works on a read-only folder."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False  # no lock file: nobody has ever trained here
        try:
            answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _whole_file(fcntl.F_WRLCK))
        finally:
            os.close(fd)
        return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK

    def holder(self) -> dict | None:
        """{'pid', 'host', 'run_dir', 'since'} of the live holder, or None when nobody trains."""
        if not self.is_held():
            return None
        # The holder writes its record right after locking: a reader may see it empty for an instant.
        return read_json(self.path) or {"pid": None, "run_dir": "", "since": None}


LAUNCH_NAME = ".launch.lock"


class LaunchGate:
    """Held by a server from a Start, Resume or Delete click until the trainer holds the training lock (or the
    launch failed): pruning and deleting happen inside it, so a run being launched is never taken for an ended one.

    Exclusive across threads and processes (an open-file-description lock, like the training lock); a second
    launch waits for the first instead of racing it.
    """

    def __init__(self, runs_root: Path, *, timeout_s: float = 30.0):
        self.path = Path(runs_root) / LAUNCH_NAME
        self.timeout_s = timeout_s
        self._fd = None

    def __enter__(self) -> "LaunchGate":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _whole_file(fcntl.F_WRLCK))
                break
            except OSError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise TimeoutError("another start, resume or delete is still in progress; try again") from None
                time.sleep(0.02)
        self._fd = fd
        return self

    def __exit__(self, *_exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the description releases the lock
            self._fd = None
