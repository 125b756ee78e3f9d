"""Background jobs: generator choices, request validation, start / refuse / stop / resume, one job at a time."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from aigc.cli import build_parser as build_train_parser
from aigc.engine.spec import given_settings, spec_to_args

from aigc import settings
from aigc.serve import jobs
from aigc.serve.generators import generator_choices
from aigc.settings import SHIPPED_FILES
from aigc.serve.hosting import Policy
from aigc.engine.spec import SpecError
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import read_status
from aigc.runs.lock import TrainingLock
from helpers import save_untrained_generator, stop_trainers, wait_until

FAST_TRAINER_ARGS = "--eval-samples 0 --checkpoint-seconds 5"


def write_tiny_generators(folder: Path, presets=("dcgan", "seed")) -> None:
    """Untrained generators in the shipped file layout (stand-ins for checkpoints/)."""
    for preset in presets:
        save_untrained_generator(folder / SHIPPED_FILES[preset], preset=preset)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Runs, checkpoints and MNIST all in tmp_path; kills any trainer left holding the tmp lock."""
    from aigc.engine.data import synthetic_mnist

    runs, ckpt = tmp_path / "runs", tmp_path / "ckpt"
    ckpt.mkdir()
    np.savez(tmp_path / "mnist.npz", **synthetic_mnist(512, 64))
    monkeypatch.setenv("AIGC_RUNS_DIR", str(runs))
    monkeypatch.setenv("AIGC_CHECKPOINT_DIR", str(ckpt))
    monkeypatch.setenv("AIGC_MNIST", str(tmp_path / "mnist.npz"))
    monkeypatch.setenv("AIGC_TRAIN_ARGS", FAST_TRAINER_ARGS)
    yield {"runs": runs, "ckpt": ckpt}
    stop_trainers(runs)


def wait_for_state(paths: RunPaths, states) -> dict:
    """The status once the run is in one of states and its trainer has let go of the lock."""
    def ended():
        status = read_status(paths) or {}
        return status if status.get("state") in states and not TrainingLock(paths.root.parent).holder() else None
    return wait_until(ended, what=f"{paths.name} in {states}", details=lambda: jobs.tail_log(paths))


def wait_for_step(paths: RunPaths) -> None:
    wait_until(lambda: (read_status(paths) or {}).get("state") == "running", what=f"{paths.name} running",
               details=lambda: jobs.tail_log(paths))


def test_paths_follow_environment(env):
    assert settings.runs_root() == env["runs"].resolve()
    assert settings.checkpoint_dir() == env["ckpt"].resolve()
    assert settings.shipped_generator("seed").parent == env["ckpt"].resolve()
    assert jobs.data_source()[0]


def test_data_source_says_how_to_provide(monkeypatch, tmp_path):
    monkeypatch.setenv("AIGC_MNIST", str(tmp_path / "missing.npz"))
    available, message = jobs.data_source()
    assert not available and "AIGC_MNIST" in message


def test_generator_choices(env):
    assert generator_choices() == []
    write_tiny_generators(env["ckpt"])
    run = RunPaths(env["runs"] / "run-a")
    atomic_write_json(run.status, {"state": "finished"})
    run.generator.write_bytes(b"not checked here")
    kinds = [c.kind for c in generator_choices()]
    assert kinds == ["shipped", "seed", "run"]
    assert generator_choices()[-1].path == run.generator


@pytest.mark.parametrize("request_, message", [
    (jobs.JobRequest(epochs=6), "between 1 and 5"),
    (jobs.JobRequest(epochs=-1), "between 1 and 5"),
    (jobs.JobRequest(batch_size=7), "batch size"),
    (jobs.JobRequest(lr_g=float("nan")), "learning rate"),
    (jobs.JobRequest(init="shipped"), "no shipped dcgan"),
])
def test_request_spec_refuses_with_a_reason(env, request_, message):
    with pytest.raises(SpecError, match=message):
        jobs.request_spec(request_, Policy(max_epochs=5))


def test_request_spec_of_a_valid_request(env):
    spec = jobs.request_spec(jobs.JobRequest(init="scratch", epochs=3, batch_size=64, lr_g=1e-3), Policy(max_epochs=5))
    assert (spec.epochs, spec.batch_size, spec.lr_g, spec.lr_d, spec.init_from) == (3, 64, 1e-3, 2e-3, None)
    default = jobs.request_spec(jobs.JobRequest(init="scratch"), Policy())  # empty fields: the preset's own
    assert (default.batch_size, default.lr_g, default.lr_half_life) == (32, 2e-3, 3.0)


def test_trainer_command_is_nice_and_thread_limited(env, monkeypatch):
    write_tiny_generators(env["ckpt"], presets=("dcgan",))
    monkeypatch.setenv("AIGC_TRAIN_THREADS", "1")
    spec = jobs.request_spec(jobs.JobRequest(epochs=2, init="shipped"), Policy())
    joined = " ".join(jobs.trainer_command(spec, run_dir=Path("/r/x")))
    assert "--nice 10" in joined and "--threads 1" in joined and "--epochs 2" in joined
    assert "--init-from" in joined and spec.eval_samples == 0 and spec.checkpoint_seconds == 5  # $AIGC_TRAIN_ARGS


def test_train_more_takes_the_shipped_files_width_not_todays_default(env):
    """A shipped generator built before a change of the default width still trains more from the page."""
    from aigc.engine.run_plan import Invocation, make_plan

    save_untrained_generator(env["ckpt"] / SHIPPED_FILES["dcgan"], base_filters=16, card={"preset": "dcgan", "epochs": 30})
    spec = jobs.request_spec(jobs.JobRequest(epochs=1, init="shipped"), Policy())
    assert spec.width == 16 and spec.model.base_filters == 16
    args = build_train_parser().parse_args(["train", "--run-dir", "x", *spec_to_args(spec)])
    plan = make_plan(Invocation(env["runs"] / "r", add_epochs=1), given_settings(args))  # the trainer agrees
    assert plan.spec.width == 16 and plan.base_epochs == 30


def test_current_job_without_runs(env):
    job = jobs.current_job()
    assert job.paths is None and not job.active


def test_cooldown_counts_from_the_last_job(env):
    run = RunPaths(env["runs"] / "run-a")
    atomic_write_json(run.status, {"state": "finished", "finished_at": time.time()})
    assert jobs.cooldown_remaining(root=env["runs"], policy=Policy(cooldown_s=0)) == 0
    wait = jobs.cooldown_remaining(root=env["runs"], policy=Policy(cooldown_s=60))
    assert 50 < wait <= 60
    result = jobs.start_job(jobs.JobRequest(init="scratch"), policy=Policy(cooldown_s=60))
    assert not result.ok and "wait" in result.message


@pytest.mark.slow
def test_start_refuse_stop_resume(env):
    policy = Policy()
    request = jobs.JobRequest(epochs=50, batch_size=16, init="scratch")
    first = jobs.start_job(request, policy=policy)
    assert first.ok, first.message
    second = jobs.start_job(request, policy=policy)
    assert not second.ok and "already running" in second.message and first.paths.root.name in second.message
    job = jobs.current_job()
    assert job.active and job.paths == first.paths
    wait_for_step(first.paths)
    jobs.stop_job(first.paths)
    status = wait_for_state(first.paths, ("stopped",))
    assert status["total_epochs"] == 50
    assert not jobs.current_job().active
    resumed = jobs.resume_job(first.paths, policy=policy)
    assert resumed.ok, resumed.message
    wait_for_step(first.paths)
    jobs.stop_job(first.paths)
    wait_for_state(first.paths, ("stopped",))
    assert "resumed from" in first.paths.log.read_text()


@pytest.mark.slow
def test_two_simultaneous_starts_make_exactly_one_job(env):
    request = jobs.JobRequest(epochs=50, batch_size=16, init="scratch")
    results = []
    threads = [threading.Thread(target=lambda: results.append(jobs.start_job(request, policy=Policy())))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.ok for r in results) == [False, True], [r.message for r in results]
    loser = [r for r in results if not r.ok][0].message
    assert "already running" in loser or "started first" in loser, loser
    runs = [p for p in env["runs"].iterdir() if p.is_dir()]
    assert len(runs) == 1  # the refused one left no empty run folder


@pytest.mark.slow
def test_tiny_job_from_shipped_weights_finishes(env):
    write_tiny_generators(env["ckpt"], presets=("dcgan",))
    result = jobs.start_job(jobs.JobRequest(epochs=1, batch_size=64, init="shipped"), policy=Policy())
    assert result.ok, result.message
    status = wait_for_state(result.paths, ("finished",))
    assert status["epoch"] == 1 and result.paths.generator.is_file()
    assert json.loads(result.paths.config.read_text())["spec"]["init_from"].endswith("generator.keras")
    assert generator_choices()[-1].kind == "run"


def test_the_log_download_names_no_server_folder(env):
    run = RunPaths(env["runs"] / "run-a")
    run.root.mkdir(parents=True)
    run.log.write_text(f"loaded {run.root}/config.json\nTraceback: File \"{settings.ROOT}/aigc/cli/train.py\"\n"
                       f"data {env['runs']}/../mnist.npz and {Path.home()}/.keras\n")
    text = jobs.log_for_download(run).decode()
    assert str(env["runs"]) not in text and str(settings.ROOT) not in text and str(Path.home()) not in text
    assert "loaded config.json" in text and "aigc/cli/train.py" in text and "~/.keras" in text


def test_a_page_job_never_joins_the_servers_cluster(env, monkeypatch):
    """TF_CONFIG in the server's environment would make the page's trainer a cluster worker."""
    seen = {}

    class FakeProcess:
        pid = 4242

        def __init__(self, command, **kwargs):
            seen.update(kwargs["env"])

        def poll(self):
            return 2

        def wait(self):
            return 2

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}')
    monkeypatch.setattr(jobs.subprocess, "Popen", FakeProcess)
    result = jobs.start_job(jobs.JobRequest(init="scratch"), policy=Policy())
    assert not result.ok and seen and "TF_CONFIG" not in seen
