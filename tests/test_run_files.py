"""One writer per run file: config.json is the plan's (saved whole before training), status.json is state only,
and every reader of a run's settings goes through spec_of."""
import json

import pytest

from aigc.engine.run_plan import Invocation, make_plan, save_plan, spec_of
from aigc.engine.spec import RunSpec
from aigc.runs.files import atomic_write_json, read_json
from aigc.runs.layout import RunPaths

from helpers import tiny_run

OLD_BATCH = 128  # the batch size of runs from before run specs, which config.json did not record
ONE_STEP = dict(preset="seed", batch_size=64, train_limit=64, probe_seconds=0.0)  # one step per epoch


def test_status_json_is_never_a_settings_source(tmp_path):
    """A run from before run specs recorded no batch size in config.json: it is not taken from status.json."""
    paths = RunPaths(tmp_path / "old")
    atomic_write_json(paths.config, {"model_config": {"preset": "seed"}, "hyperparameters": {"lr_g": 1e-4}})
    atomic_write_json(paths.status, {"state": "stopped", "epoch": 1, "total_epochs": 9, "batch_size": 16})
    plan = make_plan(Invocation(paths.root, resume=True), {})
    assert plan.spec == spec_of(read_json(paths.config))
    assert (plan.spec.batch_size, plan.spec.epochs, plan.spec.lr_g) == (OLD_BATCH, 1, 1e-4)


def test_train_more_counts_from_the_recorded_total_not_from_status(tmp_path):
    """The plan needs no count of epochs done: a damaged or lagging status.json cannot change the target."""
    paths = RunPaths(tmp_path / "run")
    save_plan(make_plan(Invocation(paths.root, add_epochs=3), dict(preset="seed")))
    for status in (b'{"state": "fini', json.dumps({"state": "finished", "epoch": 1}).encode()):
        paths.status.write_bytes(status)
        plan = make_plan(Invocation(paths.root, add_epochs=2), {})
        assert plan.spec.epochs == 5 and plan.record["spec"]["epochs"] == 5
        assert "training 2 more epochs: to epoch 5" in plan.notes


def test_compare_reads_a_runs_settings_through_spec_of(tmp_path):
    from aigc.serve import compare

    paths = RunPaths(tmp_path / "runs" / "old")
    record = {"model_config": {"preset": "seed"}, "hyperparameters": {"lr_d": 1e-4}}
    atomic_write_json(paths.config, record)
    atomic_write_json(paths.status, {"state": "finished", "epoch": 1, "batch_size": 16})
    paths.metrics.write_text('{"kind": "epoch", "epoch": 1, "step": 8, "fdd": 3.0}\n')
    entry = next(e for e in compare.entries(root=tmp_path / "runs") if e.name == "old")
    expected = {k: v for k, v in spec_of(record).to_dict().items() if k != "data"}  # a server path: no column
    assert entry.spec == expected and entry.spec["batch_size"] == OLD_BATCH


@pytest.mark.slow
def test_the_trainer_never_writes_config_json(tmp_path, synthetic_npz):
    """Train more after a kill that left status.json an epoch behind the checkpoint: the target is the plan's,
    config.json stays byte for byte what save_plan wrote, and every file agrees on the total."""
    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, epochs=1, **ONE_STEP) == "finished"
    paths = RunPaths(run_dir)
    atomic_write_json(paths.status, dict(read_json(paths.status), state="running", epoch=0, step=0))
    plan = make_plan(Invocation(run_dir, add_epochs=1), {})
    save_plan(plan)
    saved = paths.config.read_bytes()
    from aigc.engine.trainer import run

    assert run(plan) == "finished"
    assert paths.config.read_bytes() == saved
    status = read_json(paths.status)
    assert status["total_epochs"] == status["epoch"] == RunSpec.from_dict(json.loads(saved)["spec"]).epochs == 2
