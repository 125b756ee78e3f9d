"""The container's PID 1: runs the web server as a child and, on SIGTERM, stops a training job gracefully first.

`docker stop` sends SIGTERM to PID 1 only, then SIGKILL after --stop-timeout (10 s by default).
The trainer runs in its own process session (so a page reload never kills it), so nothing
forwarded the signal: the job was SIGKILLed, losing up to a minute and leaving a stale status.
Here PID 1 asks the lock holder to stop (STOP file + SIGTERM: it finishes the step, saves a
checkpoint and ends as 'stopped'), waits until the lock is released, then stops the server.

    python -m aigc.serve.supervisor streamlit run app.py --server.address 0.0.0.0 ...

No Streamlit import: the server is a child process. As PID 1 it also reaps orphans.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from aigc import settings
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import read_status, request_stop
from aigc.runs.lock import TrainingLock

LOG = logging.getLogger("aigc.serve.supervisor")
DEFAULT_GRACE_S = 50.0  # the trainer's share; docker run --stop-timeout 60 leaves 10 s for the server
SERVER_GRACE_S = 8.0
POLL_S = 0.2


class Supervisor:
    """One child command (the server) plus the graceful stop of whichever trainer holds the lock."""

    def __init__(self, command: list[str], *, runs_root: Path, grace_s: float = DEFAULT_GRACE_S):
        self.command, self.runs_root, self.grace_s = command, Path(runs_root), grace_s
        self.child: subprocess.Popen | None = None
        self.stopping = False

    def run(self) -> int:
        """Start the child and wait; returns the exit code to leave with (0 after a requested stop)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._request_stop)
        self.child = subprocess.Popen(self.command)
        code = None
        while code is None and not self.stopping:
            code = self._reap()
            time.sleep(POLL_S)
        self.stop_training()
        if code is None:
            code = self._stop_child()
        self._reap()
        return 0 if self.stopping else code

    def _request_stop(self, signum, _frame) -> None:
        LOG.warning("supervisor: %s received; stopping training, then the server", signal.Signals(signum).name)
        self.stopping = True

    def _reap(self) -> int | None:
        """Collect every exited child (orphans reparent to PID 1); the server's exit code once it ended."""
        code = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if self.child is not None and pid == self.child.pid:
                code = os.waitstatus_to_exitcode(status)
                self.child.returncode = code
        if code is None and self.child is not None and self.child.returncode is not None:
            code = self.child.returncode
        return code

    def stop_training(self) -> str | None:
        """Ask the lock holder to stop and wait (up to grace_s) for it to release the lock; its run name or None."""
        lock = TrainingLock(self.runs_root)
        holder = lock.holder()
        if holder is None:
            return None
        run_dir = holder.get("run_dir") or ""
        if run_dir:
            with contextlib.suppress(OSError):
                request_stop(RunPaths(Path(run_dir)))  # the cooperative way, checked after every step
        pid = holder.get("pid")
        here = holder.get("host") in (None, socket.gethostname())  # a chief on another host gets only the STOP file
        if isinstance(pid, int) and pid > 1 and here:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)  # the lock is held, so this pid is the live trainer
        deadline = time.monotonic() + self.grace_s
        while lock.is_held() and time.monotonic() < deadline:
            self._reap()
            time.sleep(POLL_S)
        name = Path(run_dir).name or "the training job"
        if lock.is_held():
            LOG.error("supervisor: %s did not stop within %.0f s (raise AIGC_STOP_GRACE_S and --stop-timeout)",
                      name, self.grace_s)
        else:
            LOG.warning("supervisor: %s %s", name, ended_how(RunPaths(Path(run_dir))) if run_dir else "ended")
        return name

    def _stop_child(self) -> int:
        """SIGTERM the server, SIGKILL it after SERVER_GRACE_S; its exit code."""
        assert self.child is not None
        with contextlib.suppress(ProcessLookupError):
            self.child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SERVER_GRACE_S
        while time.monotonic() < deadline:
            code = self._reap()
            if code is not None:
                return code
            time.sleep(POLL_S)
        with contextlib.suppress(ProcessLookupError):
            self.child.kill()
        return self.child.wait()


def grace_seconds() -> float:
    """$AIGC_STOP_GRACE_S, else DEFAULT_GRACE_S (bad values fall back to the default)."""
    try:
        value = float(settings.env(settings.STOP_GRACE_ENV) or DEFAULT_GRACE_S)
    except ValueError:
        return DEFAULT_GRACE_S
    return value if 0 <= value <= 3600 else DEFAULT_GRACE_S


def ended_how(paths: RunPaths) -> str:
    """What a stopped trainer really did, from its status and checkpoint folder (said in the supervisor's log)."""
    status = read_status(paths, holder=None) or {}
    state = status.get("state")
    if state == "stopped":
        saved = paths.ckpt.is_dir() and any(paths.ckpt.iterdir())
        return "stopped and saved its checkpoint" if saved else "stopped before training began (nothing to save)"
    if state == "finished":
        return "finished"
    if state == "failed":
        return f"ended as failed: {status.get('error') or 'no reason recorded'}"
    return f"ended without recording a stop (state {state!r})"


def main(argv: list[str] | None = None) -> int:
    """Run argv (default: streamlit run app.py) under the supervisor; exit with its code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    command = list(sys.argv[1:] if argv is None else argv) or ["streamlit", "run", "app.py"]
    if command[0] == "streamlit":
        command = [sys.executable, "-m", "streamlit", *command[1:]]
    return Supervisor(command, runs_root=settings.runs_root(), grace_s=grace_seconds()).run()


if __name__ == "__main__":
    sys.exit(main())

