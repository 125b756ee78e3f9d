"""Runs kept on a hosted server: the oldest ended runs are pruned past a cap, never a live one; a free-disk floor."""
from __future__ import annotations

import json
import os
from collections import namedtuple
from pathlib import Path

from aigc.serve import retention
from aigc.serve.hosting import Policy, load_policy
from aigc.runs.layout import RunPaths
from aigc.runs.lock import TrainingLock


def make_run(root: Path, name: str, state: str, age_s: float) -> RunPaths:
    paths = RunPaths(root / name)
    (paths.root / "ckpt").mkdir(parents=True)
    (paths.root / "ckpt" / "ckpt-1.data").write_bytes(b"x" * 1000)
    paths.status.write_text(json.dumps({"state": state, "epoch": 1}))
    stamp = 1_700_000_000 - age_s
    os.utime(paths.status, (stamp, stamp))
    return paths


def names(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if not p.name.startswith(".")}


def test_oldest_ended_runs_are_pruned_beyond_the_cap(tmp_path):
    """Issue 11: each run left 25-44 MB that nothing ever deleted."""
    for index, state in enumerate(["finished", "stopped", "failed", "finished", "finished"]):
        make_run(tmp_path, f"run-{index}", state, age_s=100 - index)  # run-4 is the newest
    removed = retention.prune_runs(tmp_path, keep=2)
    assert removed == ["run-0", "run-1", "run-2"]  # oldest first
    assert names(tmp_path) == {"run-3", "run-4"}


def test_the_run_whose_trainer_holds_the_lock_is_never_pruned(tmp_path):
    live = make_run(tmp_path, "run-live", "running", age_s=1000)  # the oldest, but its trainer lives
    make_run(tmp_path, "run-a", "finished", age_s=10)
    make_run(tmp_path, "run-b", "finished", age_s=5)
    lock = TrainingLock(tmp_path)
    assert lock.acquire(live.root)
    try:
        assert retention.prune_runs(tmp_path, keep=0) == ["run-a", "run-b"]
        assert names(tmp_path) == {"run-live"}
    finally:
        lock.release()


def test_a_status_that_lies_about_an_ended_run_does_not_protect_it_but_the_lock_does(tmp_path):
    make_run(tmp_path, "run-killed", "running", age_s=50)  # said running, no lock: the trainer was killed
    make_run(tmp_path, "run-new", "finished", age_s=1)
    assert retention.prune_runs(tmp_path, keep=1) == ["run-killed"]


def test_make_room_counts_the_new_run_and_spares_a_resumed_one(tmp_path):
    old = make_run(tmp_path, "run-old", "stopped", age_s=100)
    for index in range(3):
        make_run(tmp_path, f"run-{index}", "finished", age_s=50 - index)
    policy = Policy(training="on", loopback=False, keep_runs=2, min_free_mb=0)
    assert retention.make_room(tmp_path, policy, resuming=old) is None
    assert names(tmp_path) == {"run-old", "run-2"}  # 1 kept + the resumed one = the cap of 2


def test_no_cap_keeps_everything(tmp_path):
    for index in range(4):
        make_run(tmp_path, f"run-{index}", "finished", age_s=index)
    assert retention.make_room(tmp_path, Policy(min_free_mb=0)) is None
    assert len(names(tmp_path)) == 4


def test_hosted_policy_caps_runs_by_default():
    assert load_policy(env={"AIGC_TRAINING": "on"}, address="0.0.0.0").keep_runs > 0
    assert load_policy(env={}, address="localhost").keep_runs == 0  # the local app keeps everything


def test_free_disk_check_before_a_job(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(retention.shutil, "disk_usage", lambda _path: usage(10**10, 10**10 - 100 * 2**20, 100 * 2**20))
    message = retention.disk_problem(tmp_path / "runs" / "not-yet", min_free_mb=500)
    assert message and "100 MB free" in message and "500 MB needed" in message
    assert str(tmp_path) not in message and "\n" not in message
    assert retention.disk_problem(tmp_path, min_free_mb=50) is None
    assert retention.make_room(tmp_path, Policy(loopback=False, keep_runs=0, min_free_mb=1024)) == \
        retention.disk_problem(tmp_path, min_free_mb=1024)


def test_a_runs_size_counts_its_checkpoints(tmp_path):
    assert make_run(tmp_path, "run-a", "finished", age_s=1).size_bytes() >= 1000
