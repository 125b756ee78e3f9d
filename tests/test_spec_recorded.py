"""What a run trains with is recorded in its spec: a constant changed in the code does not change a resumed run,
and an operator's flag becomes part of the spec the page saves instead of overriding it unseen."""
import dataclasses
from pathlib import Path

import pytest
from helpers import ema_distances_after_one_step

from aigc.engine.run_plan import Invocation, make_plan, save_plan
from aigc.engine.spec import SETTINGS, RunSpec, SpecError, given_settings
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths

# Values the code had built in before they were settings, and different defaults a later version might choose.
BUILT_IN = {"r1_every": 4, "r1_samples": 8, "ema_warmup": 10.0, "lr_floor": 1 / 16, "class_fade": 2.0,
            "augment_shift": 0, "mode_seeking": 0.0, "g_refine": 0,
            "d_stddev": False, "class_boost": 0.0, "class_boost_half_life": 0.15}
CHANGED = {"r1_every": 1, "r1_samples": 32, "ema_warmup": 1.0, "lr_floor": 0.5, "class_fade": 3.0,
           "augment_shift": 2, "mode_seeking": 1.0, "class_boost_half_life": 0.5}
# g_refine, d_stddev: architecture, fixed once a run exists; class_boost: the seed preset keeps 0 whatever dcgan's is


@pytest.fixture
def new_defaults(monkeypatch):
    """The table's defaults changed, as a later version of the code might change them."""
    for name, value in CHANGED.items():
        monkeypatch.setitem(SETTINGS, name, dataclasses.replace(SETTINGS[name], default=value))


def old_run(tmp_path, **spec) -> RunPaths:
    """A run whose config.json was saved before these settings existed (its spec lacks them)."""
    paths = RunPaths(tmp_path / "old")
    saved = {k: v for k, v in RunSpec.resolve(**spec).to_dict().items() if k not in BUILT_IN}
    atomic_write_json(paths.config, {"spec": saved, "model_config": {}, "overrides": []})
    atomic_write_json(paths.status, {"state": "stopped", "epoch": 0})
    return paths


def test_a_run_saved_before_the_settings_resumes_with_the_values_that_were_built_in(tmp_path, new_defaults):
    plan = make_plan(Invocation(old_run(tmp_path).root, resume=True), {})
    assert {name: getattr(plan.spec, name) for name in BUILT_IN} == BUILT_IN
    assert RunSpec.resolve().r1_every == CHANGED["r1_every"]  # a new run takes today's default
    rates = RunSpec.resolve(lr_g=1e-3, lr_d=1e-3, lr_half_life=1.0)
    assert plan.spec.replace(lr_g=1e-3, lr_d=1e-3, lr_half_life=1.0).learning_rates(100) == pytest.approx((1e-3 / 16,) * 2)
    assert rates.learning_rates(100) == pytest.approx((5e-4, 5e-4))  # today's floor would train it faster
    assert plan.spec.replace(lr_half_life=1.0).class_weight(1.0) == pytest.approx(plan.spec.class_loss / 4)


def test_a_run_saved_with_the_settings_keeps_its_own_values(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    save_plan(make_plan(Invocation(run_dir, add_epochs=1), {}))
    today = {name: getattr(RunSpec.resolve(), name) for name in CHANGED}
    assert all(today[name] != value for name, value in CHANGED.items())
    for name, value in CHANGED.items():
        monkeypatch.setitem(SETTINGS, name, dataclasses.replace(SETTINGS[name], default=value))
    plan = make_plan(Invocation(run_dir, resume=True), {})
    assert {name: getattr(plan.spec, name) for name in CHANGED} == today and not plan.notes


def test_the_gan_of_a_resumed_old_run_trains_with_the_recorded_ema_warm_up(tmp_path, new_defaults):
    """Today's table (warm-up 1) would hold the EMA copy at the random start after one step; the run's own
    warm-up (10) lets it follow the trained weights."""
    import keras

    from aigc.engine.gan import GAN

    spec = dict(preset="seed", ema_decay=0.999, batch_size=32, lr_g=1e-2)  # the smallest networks
    plan = make_plan(Invocation(old_run(tmp_path, **spec).root, resume=True), {})
    keras.utils.set_random_seed(0)
    gan = GAN(plan.spec)
    assert gan.spec is plan.spec
    to_trained, to_start = ema_distances_after_one_step(gan)
    assert to_trained < to_start


@pytest.fixture
def page(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AIGC_CHECKPOINT_DIR", str(tmp_path / "ckpt"))
    monkeypatch.setenv("AIGC_TRAIN_THREADS", "1")
    monkeypatch.delenv("AIGC_MNIST", raising=False)
    return monkeypatch


def test_an_operator_flag_is_part_of_the_spec_the_page_saves(tmp_path, page):
    from aigc.cli import build_parser
    from aigc.serve import jobs
    from aigc.serve.hosting import Policy

    page.setenv("AIGC_TRAIN_ARGS", "--eval-samples 0 --lr-d 3e-4 --max-steps 2")
    spec = jobs.request_spec(jobs.JobRequest(epochs=2, init="scratch", lr_d=1e-3), Policy())
    assert (spec.eval_samples, spec.lr_d) == (0, 3e-4)  # shown and saved, not applied behind the page's back
    command = jobs.trainer_command(spec, run_dir=tmp_path / "runs" / "r")
    args = build_parser().parse_args(command[command.index("train"):])
    assert args.max_steps == 2  # a flag of the process, not of the run
    plan = make_plan(Invocation(Path(args.run_dir), add_epochs=args.epochs, max_steps=args.max_steps),
                     given_settings(args))
    assert plan.spec == spec and plan.record["spec"] == spec.to_dict()


def test_on_resume_an_operator_setting_is_a_recorded_override(tmp_path, page):
    from aigc.serve import jobs

    run_dir = tmp_path / "runs" / "r"
    save_plan(make_plan(Invocation(run_dir, add_epochs=1), {}))
    page.setenv("AIGC_TRAIN_ARGS", "--eval-samples 0 --max-steps 2")
    flags = jobs._runtime_args(resume=True)
    assert "--eval-samples" in flags and "--max-steps" in flags
    from aigc.cli import build_parser

    args = build_parser().parse_args(["train", "--run-dir", str(run_dir), "--resume", *flags])
    plan = make_plan(Invocation(run_dir, resume=True), given_settings(args))
    assert plan.spec.eval_samples == 0 and "override: eval_samples 2000 -> 0" in plan.notes
    assert plan.record["overrides"][-1]["changes"]["eval_samples"] == [2000, 0]


@pytest.mark.parametrize("flags", ["--run-dir /elsewhere", "--resume", "--batch-size 0", "--colour red"])
def test_an_operator_flag_that_would_redirect_the_job_is_refused_with_a_reason(page, flags):
    from aigc.serve import jobs
    from aigc.serve.hosting import Policy

    page.setenv("AIGC_TRAIN_ARGS", flags)
    with pytest.raises(SpecError, match="AIGC_TRAIN_ARGS|batch-size"):
        jobs.request_spec(jobs.JobRequest(init="scratch"), Policy())


def test_the_page_offers_the_batch_sizes_of_the_table():
    from aigc.serve import jobs

    assert jobs.BATCH_SIZES == SETTINGS["batch_size"].offered
    assert all(SETTINGS["batch_size"].check(size) == size for size in jobs.BATCH_SIZES)


def test_train_help_shows_each_settings_default_and_limits():
    from aigc.cli import build_parser

    text = " ".join(build_parser()._subparsers._group_actions[0].choices["train"].format_help().split())
    assert "[default: 32 (seed preset: 128); a whole number at least 1 and at most 65536]" in text
    assert "[default: 4; a whole number at least 1 and at most 1000]" in text  # --r1-every
    for setting in SETTINGS.values():
        if setting.name != "epochs":
            assert f"default: {setting.default_text()}" in text, setting.name
