"""No run lost to a race: a Start from one session never prunes the run another session is resuming."""
from __future__ import annotations

import os
import random
import sys
import textwrap
import threading
import time

import pytest
from helpers import wait_until

from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths
from aigc.runs.lock import LaunchGate, TrainingLock
from aigc.serve import jobs
from aigc.serve.hosting import Policy

# A stand-in for `python -m aigc train`: takes the lock after a start-up pause, as the real trainer does before
# TensorFlow loads, and notes it when the run it was asked to resume is gone.
FAKE_TRAINER = textwrap.dedent('''
    import json, os, sys, time
    from pathlib import Path
    sys.path.insert(0, os.getcwd())  # the launcher runs jobs in the repository
    from aigc.runs.files import atomic_write_json
    from aigc.runs.lock import TrainingLock
    time.sleep(0.4)  # the real trainer's interpreter start and imports before it takes the lock
    run = Path(sys.argv[sys.argv.index("--run-dir") + 1]).resolve()
    root = Path(os.environ["AIGC_RUNS_DIR"])
    lock = TrainingLock(root)
    if not lock.acquire(run):
        sys.exit(3)
    if "--resume" in sys.argv and not (run / "config.json").is_file():
        with open(root / "lost.log", "a") as log:
            log.write(run.name + "\\n")
        sys.exit(1)
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "config.json").exists():
        atomic_write_json(run / "config.json", {"spec": {}})
    atomic_write_json(run / "status.json", {"state": "running", "pid": os.getpid(), "updated_at": time.time()})
    time.sleep(0.3)
    atomic_write_json(run / "status.json", {"state": "stopped", "pid": os.getpid(), "updated_at": time.time()})
''')
POLICY = Policy(training="on", loopback=False, keep_runs=2, cooldown_s=0.0, min_free_mb=0)


def ended_run(root, name: str, *, age_s: float) -> RunPaths:
    """A stopped run last updated age_s ago (runs are ordered by their status file's time)."""
    paths = RunPaths(root / name)
    paths.root.mkdir(parents=True, exist_ok=True)
    if not paths.config.exists():
        atomic_write_json(paths.config, {"spec": {}})
    then = time.time() - age_s
    atomic_write_json(paths.status, {"state": "stopped", "updated_at": then})
    os.utime(paths.status, (then, then))
    return paths


@pytest.fixture
def fake_trainer(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)
    monkeypatch.setenv("AIGC_RUNS_DIR", str(root))
    monkeypatch.setenv("AIGC_TRAIN_ARGS", "")
    monkeypatch.setattr(jobs, "TRAINER", [sys.executable, str(script)])
    monkeypatch.setattr(jobs, "request_spec", lambda request, policy: jobs.RunSpec.resolve(epochs=1))
    return root


def test_the_launch_gate_is_exclusive_across_threads(tmp_path):
    inside, overlap = [], []

    def enter():
        with LaunchGate(tmp_path):
            overlap.append(len(inside))
            inside.append(1)
            time.sleep(0.05)
            inside.pop()

    threads = [threading.Thread(target=enter) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == [0] * 5


@pytest.mark.slow
def test_resume_raced_by_start_a_hundred_times_never_loses_the_run(fake_trainer):
    """Before: a Start 0.3 s after a Resume pruned the resumed run (its trainer did not hold the lock yet)."""
    root = fake_trainer
    for index in range(3):
        ended_run(root, f"run-old-{index}", age_s=1800 - index)
    resumed = RunPaths(root / "run-x")
    rng = random.Random(0)
    outcomes = []
    for _ in range(100):
        # Old again (or afresh, when a Start that went first pruned it legitimately): what pruning picks first.
        ended_run(root, "run-x", age_s=3600)
        if not (root / "run-recent").is_dir():  # a newer ended run: with it, keep_runs=2 leaves no room for run-x
            ended_run(root, "run-recent", age_s=60)
        results = {}

        def resume():
            results["resume"] = jobs.resume_job(resumed, policy=POLICY, root=root)

        def start(delay=rng.uniform(0.0, 0.25)):
            time.sleep(delay)
            results["start"] = jobs.start_job(jobs.JobRequest(init="scratch"), policy=POLICY, root=root)

        threads = [threading.Thread(target=resume), threading.Thread(target=start)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_until(lambda: not TrainingLock(root).is_held(), timeout=30, what="the stand-in trainer to end")
        outcomes.append((results["resume"].ok, results["start"].ok))
        if results["resume"].ok:
            assert resumed.config.is_file(), f"run-x was deleted while it was being resumed: {results}"
    lost = (root / "lost.log").read_text() if (root / "lost.log").exists() else ""
    assert not lost, f"trainers found their run gone: {lost!r}"
    assert any(ok for ok, _ in outcomes), "some resumes ran"
