"""A run's life (issue 10's cases): the spec survives resume, the lock is the only proof of life, no lost work."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from aigc.engine.run_plan import Invocation, make_plan, save_plan
from aigc.engine.spec import SpecError
from aigc.runs.files import atomic_write_json, read_json
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import read_status
from aigc.runs.lock import TrainingLock
from helpers import REPO, run_cli, save_untrained_generator, tiny_run


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A runs root of its own (the CLI takes its lock there) and no $AIGC_MNIST."""
    root = tmp_path / "runs"
    monkeypatch.setenv("AIGC_RUNS_DIR", str(root))
    monkeypatch.delenv("AIGC_MNIST", raising=False)
    return root


def cli(runs, *args):
    return run_cli("train", *args, env={"AIGC_RUNS_DIR": str(runs)})


@pytest.mark.slow
def test_cli_resume_keeps_the_recorded_data_and_batch_size(runs, synthetic_npz):
    run_dir = runs / "r"
    first = cli(runs, "--run-dir", str(run_dir), "--epochs", "3", "--data", str(synthetic_npz), "--batch-size", "64",
                "--max-steps", "3", "--eval-samples", "0")
    assert first.returncode == 0, first.stderr
    # No --data and no $AIGC_MNIST: the recorded path is used (it used to try Keras' download and fail).
    resumed = cli(runs, "--run-dir", str(run_dir), "--resume", "--max-steps", "2")
    assert resumed.returncode == 0, resumed.stderr
    status = read_json(RunPaths(run_dir).status)
    assert status["state"] == "stopped" and status["batch_size"] == 64 and status["step"] == 5
    assert status["step_in_epoch"] == 5 and status["total_epochs"] == 3


@pytest.mark.slow
def test_a_new_batch_size_on_resume_is_recorded_and_restarts_the_epoch(runs, synthetic_npz):
    run_dir = runs / "r"
    assert cli(runs, "--run-dir", str(run_dir), "--epochs", "2", "--data", str(synthetic_npz), "--batch-size", "64",
               "--max-steps", "3", "--eval-samples", "0").returncode == 0
    resumed = cli(runs, "--run-dir", str(run_dir), "--resume", "--batch-size", "32", "--max-steps", "1")
    assert resumed.returncode == 0, resumed.stderr
    assert "override: batch_size 64 -> 32" in resumed.stdout and "starts again from its first batch" in resumed.stdout
    record = read_json(RunPaths(run_dir).config)
    assert record["spec"]["batch_size"] == 32 and record["overrides"][-1]["changes"]["batch_size"] == [64, 32]
    status = read_json(RunPaths(run_dir).status)
    assert status["batch_size"] == 32 and status["step_in_epoch"] == 1 and status["steps_per_epoch"] == 16


@pytest.mark.slow  # real training of its own
def test_resume_without_a_checkpoint_starts_from_init_from_not_random(tmp_path, synthetic_npz):
    """A 'train more' job killed before (or while) writing its first checkpoint resumes from the shipped weights."""
    from aigc.engine.checkpoints import load_generator

    source = save_untrained_generator(tmp_path / "shipped" / "generator.keras", seed=7)
    run_dir = tmp_path / "runs" / "more"
    plan = make_plan(Invocation(run_dir, add_epochs=1), dict(init_from=str(source), data=str(synthetic_npz),
                     batch_size=64, lr_g=1e-9, lr_d=1e-9, ema_decay=0.0, eval_samples=0))
    save_plan(plan)
    paths = RunPaths(run_dir)
    atomic_write_json(paths.status, {"state": "running", "pid": 999_999})  # then kill -9
    (paths.ckpt / "ckpt-1_temp").mkdir(parents=True)  # ... while the first checkpoint was being written
    assert tiny_run(run_dir, synthetic_npz, resume=True, max_steps=1) == "stopped"
    assert "initialised from generator.keras" in paths.log.read_text()
    trained, _config, _card = load_generator(paths.generator)
    original, _config, _card = load_generator(source)
    difference = max(float(np.abs(a.numpy() - b.numpy()).max())
                     for a, b in zip(trained.trainable_weights, original.trainable_weights))
    assert difference < 1e-3, "the resumed run must continue from init_from's weights, not random ones"
    assert not (paths.ckpt / "ckpt-1_temp").exists()


def test_resume_refuses_when_init_from_is_gone(tmp_path, synthetic_npz):
    source = save_untrained_generator(tmp_path / "gone" / "generator.keras")
    run_dir = tmp_path / "runs" / "more"
    save_plan(make_plan(Invocation(run_dir, add_epochs=1), dict(init_from=str(source), data=str(synthetic_npz),
                                                                 batch_size=64, eval_samples=0)))
    source.unlink()
    assert tiny_run(run_dir, synthetic_npz, resume=True, max_steps=1) == "failed"
    assert "generator.keras, which is gone" in read_json(RunPaths(run_dir).status)["error"]


@pytest.mark.parametrize("pid", ["self", "thread"])
def test_a_live_pid_is_not_proof_of_life(tmp_path, pid):
    """Pids are reused and thread ids pass kill(pid, 0): only the lock says a trainer runs."""
    paths = RunPaths(tmp_path / "runs" / "r")
    fake_pid = os.getpid() if pid == "self" else threading.get_native_id()
    atomic_write_json(paths.status, {"state": "running", "pid": fake_pid, "eta_s": 12})
    status = read_status(paths, lock=TrainingLock(tmp_path / "runs"))
    assert status["state"] == "failed" and status["interrupted"] and status["eta_s"] is None
    lock = TrainingLock(tmp_path / "runs")
    assert lock.acquire(paths.root)
    try:
        assert read_status(paths, lock=lock)["state"] == "running"
    finally:
        lock.release()


@pytest.mark.slow
def test_two_resumes_at_once_make_one_job_and_each_says_the_truth(runs, synthetic_npz, monkeypatch):
    from aigc.serve import jobs
    from aigc.serve.hosting import Policy
    from helpers import stop_trainers

    monkeypatch.setenv("AIGC_TRAIN_ARGS", "--eval-samples 0")
    run_dir = runs / "r"
    assert tiny_run(run_dir, synthetic_npz, epochs=50, max_steps=1) == "stopped"
    results = []
    threads = [threading.Thread(target=lambda: results.append(jobs.resume_job(RunPaths(run_dir), policy=Policy())))
               for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(r.ok for r in results) == [False, True], [r.message for r in results]
        winner = [r for r in results if r.ok][0]
        holder = TrainingLock(runs).holder()
        assert holder and f"pid {holder['pid']}" in winner.message
        loser = [r for r in results if not r.ok][0].message
        assert "started first" in loser or "already running" in loser, loser
    finally:
        stop_trainers(runs)


def test_probing_the_lock_never_makes_an_acquisition_fail(tmp_path):
    root = tmp_path / "runs"
    script = ("import sys; from aigc.runs.lock import TrainingLock\n"
              "lock, failed = TrainingLock(sys.argv[1]), 0\n"
              "for _ in range(1500):\n"
              "    if lock.acquire(): lock.release()\n"
              "    else: failed += 1\n"
              "print(failed)\n")
    lock = TrainingLock(root)
    assert lock.acquire()  # create the file, then let go
    lock.release()
    child = subprocess.Popen([sys.executable, "-c", script, str(root)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    probes = 0
    while child.poll() is None:
        TrainingLock(root).holder()
        probes += 1
    assert probes > 100 and child.stdout.read().strip() == "0"


def test_watching_works_on_a_read_only_runs_folder(tmp_path, monkeypatch):
    """Root ignores file modes, so the read-only file system is simulated: any open for writing fails."""
    from aigc.serve import jobs

    root = tmp_path / "runs"
    paths = RunPaths(root / "r")
    atomic_write_json(paths.status, {"state": "stopped", "epoch": 1, "total_epochs": 2})
    lock = TrainingLock(root)
    assert lock.acquire(paths.root)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    try:
        assert TrainingLock(root).holder()["run_dir"] == str(paths.root)
        job = jobs.current_job(root=root)
        assert job.active and job.paths.root == paths.root
        assert [row["run"] for row in jobs.run_rows(root=root)] == ["r"]
    finally:
        monkeypatch.setattr(os, "open", real_open)
        lock.release()


def test_one_job_at_a_time_at_any_depth_under_the_runs_root(runs, synthetic_npz):
    lock = TrainingLock(runs)
    assert lock.acquire(runs / "a")
    try:
        refused = cli(runs, "--run-dir", str(runs / "sub" / "b"), "--data", str(synthetic_npz))
    finally:
        lock.release()
    assert refused.returncode == 3 and "another training job is running (a" in refused.stderr
    assert not (runs / "sub" / "b").exists()


def test_resume_of_a_finished_run_says_so_and_trains_nothing(runs, trained_run_copy):
    run_dir = trained_run_copy  # conftest's finished 2-epoch run, copied under this test's runs root
    assert run_dir.parent == runs
    before = read_json(RunPaths(run_dir).status)
    done = cli(runs, "--run-dir", str(run_dir), "--resume")
    assert done.returncode == 0 and "already finished all 2 epochs; nothing to resume" in done.stdout
    after = read_json(RunPaths(run_dir).status)
    assert after["epoch"] == before["epoch"] == 2 and after["step"] == before["step"]


@pytest.mark.slow  # real training of its own
def test_leftovers_of_killed_writers_are_removed_when_a_run_resumes(tmp_path, synthetic_npz):
    run_dir = tmp_path / "runs" / "r"
    assert tiny_run(run_dir, synthetic_npz, epochs=2, max_steps=1) == "stopped"
    paths = RunPaths(run_dir)
    leftovers = [paths.ckpt / "ckpt-9_temp", paths.samples / ".epoch_0001.png.abc.tmp",
                 paths.root / ".status.json.xyz.tmp", paths.root / ".generator.123.tmp.keras"]
    leftovers[0].mkdir()
    for path in leftovers[1:]:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half")
    assert paths.leftovers() == sorted(leftovers)
    assert tiny_run(run_dir, synthetic_npz, resume=True, max_steps=1) == "stopped"
    assert not any(p.exists() for p in leftovers) and paths.leftovers() == []
    assert "removed 4 leftover" in paths.log.read_text()


def test_the_architecture_of_an_existing_run_cannot_change(tmp_path, synthetic_npz):
    run_dir = tmp_path / "runs" / "r"
    save_plan(make_plan(Invocation(run_dir, add_epochs=1), dict(preset="seed", data=str(synthetic_npz))))
    with pytest.raises(SpecError, match="architecture of an existing run cannot change"):
        make_plan(Invocation(run_dir, resume=True), {"preset": "dcgan"})


def test_runs_made_before_specs_resume_with_their_recorded_settings(tmp_path, synthetic_npz):
    paths = RunPaths(tmp_path / "old")
    atomic_write_json(paths.config, {"model_config": {"preset": "seed", "latent_dim": 100}, "init_from": None,
                                     "data": str(synthetic_npz), "hyperparameters": {"lr_d": 1e-4, "ema_decay": 0.0}})
    atomic_write_json(paths.status, {"state": "stopped", "batch_size": 32, "total_epochs": 4, "epoch": 1})
    plan = make_plan(Invocation(paths.root, resume=True), {})
    # Settings come from config.json only (status.json is state): what it did not record, the defaults of its day.
    assert (plan.spec.preset, plan.spec.batch_size, plan.spec.epochs, plan.spec.lr_d) == ("seed", 128, 1, 1e-4)
    assert plan.spec.data == str(synthetic_npz) and json.dumps(plan.record)
