"""A stop in the trainer's first seconds (before TensorFlow loads) is recorded as 'stopped', and said truthfully."""
from __future__ import annotations

import os
import signal
import subprocess
import time

from helpers import AIGC, REPO, wait_until

from aigc.runs.files import read_json
from aigc.runs.layout import RunPaths
from aigc.runs.lock import TrainingLock
from aigc.serve.supervisor import ended_how


def test_sigterm_before_tensorflow_loads_records_stopped(tmp_path, synthetic_npz):
    """Before: exit 143, the run left 'created' (read as 'failed: ended without saying why').

    The signal is sent the moment the trainer holds the lock: it then plans the run, and only later loads TensorFlow.
    """
    run = RunPaths(tmp_path / "runs" / "early")
    env = dict(os.environ, AIGC_RUNS_DIR=str(tmp_path / "runs"), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    process = subprocess.Popen([*AIGC, "train", "--run-dir", str(run.root), "--epochs", "1", "--data",
                                str(synthetic_npz)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lock = TrainingLock(tmp_path / "runs")
    wait_until(lambda: lock.is_held() or process.poll() is not None, timeout=60, every=0.005, what="the lock")
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    status = read_json(run.status) or {}
    assert status.get("state") == "stopped", (status, output)
    assert run.config.is_file(), "the plan is kept: Resume starts it properly"
    saved = run.ckpt.is_dir() and any(run.ckpt.iterdir())
    assert ended_how(run) == ("stopped and saved its checkpoint" if saved else
                              "stopped before training began (nothing to save)"), "the supervisor says what happened"
    if not saved:
        assert "nothing trained" in output


def test_other_commands_still_end_on_sigterm(tmp_path):
    process = subprocess.Popen([*AIGC, "eval", "--n", "10000"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(REPO)))
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM or process.returncode == -signal.SIGTERM


def test_a_killed_workers_private_folder_is_removed_by_the_next_worker(tmp_path):
    """Before: a worker killed with -9 left /tmp/aigc-worker1-* (29 MB) behind for good."""
    from aigc.engine.trainer import remove_dead_private_folders

    dead, alive, other = tmp_path / "aigc-worker1-dead", tmp_path / "aigc-worker2-alive", tmp_path / "aigc-notes"
    for folder in (dead, alive, other):
        folder.mkdir()
    (dead / ".train.lock").write_text("{}")  # its lock file, held by nobody: the worker was killed
    (dead / "ckpt").mkdir()
    held = TrainingLock(alive)
    assert held.acquire(alive)
    try:
        assert remove_dead_private_folders(tmp_path) == ["aigc-worker1-dead"]
    finally:
        held.release()
    assert alive.is_dir() and other.is_dir() and not dead.exists()
