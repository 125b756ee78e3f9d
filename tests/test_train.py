"""The trainer: a step trains, runs resume where they left off, stops are graceful, files stay valid."""
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from aigc.runs import files as run_files, lifecycle
from aigc.engine.spec import RunSpec, SpecError
from aigc.runs.files import read_json, read_metrics
from aigc.runs.layout import RunPaths

from helpers import REPO, ema_distances_after_one_step, tiny_run, wait_until


# dcgan steps: also in the session's trained run (conftest); its own step here is in the slow lane
@pytest.mark.parametrize("preset", [pytest.param("dcgan", marks=pytest.mark.slow), "seed"])
def test_one_step_is_finite_and_changes_weights(preset):
    from aigc.engine.data import synthetic_mnist
    from aigc.engine.gan import GAN

    arrays = synthetic_mnist(64, 8)
    gan = GAN(RunSpec.resolve(preset=preset, lr_g=2e-4, lr_d=2e-4, ema_decay=0.9, batch_size=64))
    before_g = [w.copy() for w in gan.generator.get_weights()]
    before_d = [w.copy() for w in gan.discriminator.get_weights()]
    gan.attach_data(arrays["x_train"], arrays["y_train"])
    metrics = gan.train_steps(np.arange(64, dtype=np.int32)[None])
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert 0 <= float(metrics["d_real"]) <= 1 and 0 <= float(metrics["d_fake"]) <= 1
    assert any(not np.allclose(a, b) for a, b in zip(before_g, gan.generator.get_weights()))
    assert any(not np.allclose(a, b) for a, b in zip(before_d, gan.discriminator.get_weights()))
    assert int(gan.g_optimizer.iterations) == 1 and int(gan.d_optimizer.iterations) == 1


def test_many_steps_on_attached_data_match_one_step_per_batch():
    """The trainer's path (data on the device, batches gathered inside one call of K steps) trains like the
    traced step fed the same batches: same scaling to [-1, 1], same labels, same noise, same updates."""
    import keras

    from aigc.engine.data import epoch_batches, synthetic_mnist
    from aigc.engine.gan import GAN

    arrays = synthetic_mnist(96, 8)
    rows = epoch_batches(96, batch_size=16, epoch_seed=3)[:3]
    gans, first, rest = [], [], []
    for fused in (False, True):
        keras.utils.set_random_seed(7)
        gan = GAN(RunSpec.resolve(width=64, class_loss=0.0, r1_gamma=0.0, lr_g=1e-3, lr_d=1e-3, ema_decay=0.9,
                                  batch_size=16, seed=7))
        if fused:
            gan.attach_data(arrays["x_train"], arrays["y_train"])
            first.append(gan.train_steps(rows[:1]))
            rest.append(gan.train_steps(rows[1:]))  # two steps in one call: their mean metrics
        else:
            images = (arrays["x_train"].astype(np.float32) / 127.5 - 1.0)[..., None]
            steps = [{k: float(v) for k, v in gan._step(images[row], arrays["y_train"][row].astype(np.int32)).items()}
                     for row in rows]
            first.append(steps[0])
            rest.append({k: (steps[1][k] + steps[2][k]) / 2 for k in steps[0]})
        gans.append(gan)
    for key in first[0]:  # the first step's losses come from the initial weights: a pure function of the batch
        assert first[1][key] == pytest.approx(first[0][key], rel=1e-5, abs=1e-6), key
        assert rest[1][key] == pytest.approx(rest[0][key], rel=1e-3, abs=1e-4), key
    assert int(gans[1].g_optimizer.iterations) == 3
    # Adam turns float noise in near-zero gradients into whole lr-sized steps for a few weights; the rest agree.
    differences = np.concatenate([np.abs(a - b).ravel() for a, b in zip(
        *(g.generator.get_weights() + g.discriminator.get_weights() for g in gans))])
    assert np.percentile(differences, 99) < 1e-5, np.percentile(differences, [50, 99, 100])


@pytest.mark.slow  # real training of its own
def test_hinge_loss_step_is_finite():
    from aigc.engine.data import synthetic_mnist
    from aigc.engine.gan import GAN

    arrays = synthetic_mnist(32, 8)
    gan = GAN(RunSpec.resolve(lr_g=2e-4, lr_d=2e-4, ema_decay=0.0, loss="hinge", batch_size=32))
    gan.attach_data(arrays["x_train"], arrays["y_train"])
    metrics = gan.train_steps(np.arange(32, dtype=np.int32)[None])
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_run_writes_the_run_directory(trained_run):
    from aigc.engine.checkpoints import load_generator
    paths = RunPaths(trained_run)  # conftest's one tiny run of the session, trained in this process
    status = read_json(paths.status)
    assert status["state"] == "finished"
    assert status["epoch"] == 2 and status["total_epochs"] == 2 and status["steps_per_epoch"] == 8
    assert status["step"] == 16 and status["pid"] == os.getpid()
    records = [r for r in read_metrics(paths.metrics) if r["kind"] != "probe"]  # quick checks: test_recipe.py
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    for key in ("g_loss", "d_loss", "d_real", "d_fake", "img_per_s", "epoch", "step", "time"):
        assert all(key in r for r in records), key
    assert sum(r["kind"] == "step" for r in records) >= 4
    assert [p.name for p in paths.sample_files()] == ["epoch_0001.png", "epoch_0002.png"]
    model, config, card = load_generator(paths.generator)
    assert config.preset == "dcgan" and card["epochs"] == 2
    assert list(paths.tb.iterdir()), "TensorBoard events expected"
    assert "finished" in paths.log.read_text()
    assert paths.discriminator.exists()


@pytest.mark.slow  # real training of its own
def test_resume_continues_counts_and_optimizer(tmp_path, synthetic_npz):
    import tensorflow as tf

    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, epochs=1) == "finished"
    assert tiny_run(run_dir, synthetic_npz, epochs=2) == "finished"
    paths = RunPaths(run_dir)
    status = read_json(paths.status)
    assert status["epoch"] == 3 and status["total_epochs"] == 3 and status["step"] == 24
    epochs = [r["epoch"] for r in read_metrics(paths.metrics) if r["kind"] == "epoch"]
    assert epochs == [1, 2, 3], "metrics must be appended, not restarted"
    reader = tf.train.load_checkpoint(str(tf.train.latest_checkpoint(str(paths.ckpt))))
    names = reader.get_variable_to_shape_map()
    iterations = [n for n in names if n.startswith("g_optimizer") and "iteration" in n]
    assert iterations and reader.get_tensor(iterations[0]) == 24
    assert "resumed from" in paths.log.read_text()


@pytest.mark.slow  # real training of its own
def test_max_steps_stops_and_resume_finishes_the_epoch(tmp_path, synthetic_npz):
    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, epochs=1, max_steps=3) == "stopped"
    status = read_json(RunPaths(run_dir).status)
    assert status["state"] == "stopped" and status["step"] == 3 and status["epoch"] == 0
    assert tiny_run(run_dir, synthetic_npz, resume=True) == "finished"
    status = read_json(RunPaths(run_dir).status)
    assert status["epoch"] == 1 and status["step"] == 8, "the resumed epoch skips the 3 batches it already did"


def test_preset_mismatch_on_resume_fails_clearly(trained_run_copy, synthetic_npz):
    with pytest.raises(SpecError, match="architecture of an existing run cannot change"):
        tiny_run(trained_run_copy, synthetic_npz, preset="seed")  # a dcgan run


def test_missing_data_fails_with_message(tmp_path):
    state = tiny_run(tmp_path / "run", tmp_path / "missing.npz")
    status = read_json(RunPaths(tmp_path / "run").status)
    assert state == "failed" and "MNIST file not found" in status["error"]


@pytest.mark.slow  # real training of its own
def test_init_from_copies_weights_without_writing_source(tmp_path, synthetic_npz):
    from aigc.engine.checkpoints import load_generator
    first = tmp_path / "first"
    tiny_run(first, synthetic_npz, preset="seed")
    source = RunPaths(first).generator
    before = source.read_bytes()
    state = tiny_run(tmp_path / "second", synthetic_npz, init_from=str(source), max_steps=1)
    assert state == "stopped"
    assert source.read_bytes() == before, "the source weights must never be written"
    assert load_generator(RunPaths(tmp_path / "second").generator)[1].preset == "seed"


@pytest.mark.slow
@pytest.mark.parametrize("how", ["stop_file", "sigterm"])
def test_graceful_stop(tmp_path, synthetic_npz, how):
    run_dir = tmp_path / "run"
    paths = RunPaths(run_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "aigc", "train", "--run-dir", str(run_dir), "--data", str(synthetic_npz),
         "--epochs", "1000", "--batch-size", "32", "--eval-samples", "0"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    try:
        wait_until(lambda: (read_json(paths.status) or {}).get("step", 0) >= 20, what="20 steps", process=process)
        if how == "stop_file":
            lifecycle.request_stop(paths)
        else:
            process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    status = read_json(paths.status)
    assert status["state"] == "stopped"
    assert (paths.ckpt / "checkpoint").exists() and paths.generator.exists()
    assert not paths.stop.exists(), "the STOP request is consumed"
    for line in paths.metrics.read_text().splitlines():
        json.loads(line)


@pytest.mark.slow  # real training of its own
def test_status_and_metrics_valid_after_every_write(tmp_path, synthetic_npz, monkeypatch):
    from aigc.engine import run_writer

    seen = {"status": 0, "metrics": 0}
    real_json, real_append = run_files.atomic_write_json, run_files.append_metrics

    def checked_json(path, payload):
        real_json(path, payload)
        if path.name == "status.json":
            assert json.loads(path.read_text())["state"] in lifecycle.STATES
            seen["status"] += 1

    def checked_append(path, record):
        real_append(path, record)
        assert all(json.loads(line) for line in path.read_text().splitlines())
        seen["metrics"] += 1

    monkeypatch.setattr(run_writer, "atomic_write_json", checked_json)
    monkeypatch.setattr(run_writer, "append_metrics", checked_append)
    assert tiny_run(tmp_path / "run", synthetic_npz, epochs=1) == "finished"
    assert seen["status"] >= 4 and seen["metrics"] >= 4


@pytest.mark.slow  # real training of its own (EMA warm-up: also test_spec_recorded.py)
def test_ema_warms_up_instead_of_holding_the_random_start():
    from aigc.engine.gan import GAN

    gan = GAN(RunSpec.resolve(width=64, class_loss=0.0, lr_g=1e-2, lr_d=2e-4, ema_decay=0.999, batch_size=32))
    to_trained, to_start = ema_distances_after_one_step(gan)
    assert to_trained < to_start, "after the first step the EMA copy must follow the trained weights"


@pytest.mark.slow  # real training of its own
def test_resume_without_preset_keeps_the_runs_preset_and_hyperparameters(tmp_path, synthetic_npz):
    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, preset="seed", lr_d=1e-4, max_steps=2) == "stopped"
    # Resuming as the CLI does without --preset: the dcgan defaults (EMA on) must not leak in.
    assert tiny_run(run_dir, synthetic_npz, resume=True) == "finished"
    config = read_json(RunPaths(run_dir).config)
    assert config["model_config"]["preset"] == "seed"
    assert config["spec"]["ema_decay"] == 0.0 and config["spec"]["lr_d"] == 1e-4


@pytest.mark.slow
def test_log_lines_appear_once_when_stdout_is_train_log(tmp_path, synthetic_npz):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    log = run_dir / "train.log"
    with open(log, "ab") as handle:  # as the app launches the trainer
        subprocess.run([sys.executable, "-m", "aigc", "train", "--run-dir", str(run_dir), "--data", str(synthetic_npz),
                        "--epochs", "1", "--batch-size", "64", "--eval-samples", "0"], cwd=REPO, stdout=handle,
                       stderr=subprocess.STDOUT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300, check=True)
    lines = log.read_text().splitlines()
    assert sum(line.endswith("] finished") for line in lines) == 1


@pytest.mark.parametrize("gpu, native_bf16, expected", [(True, False, "mixed_bfloat16"), (False, True, "mixed_bfloat16"),
                                                         (False, False, "float32")])
def test_auto_precision_is_bf16_where_the_hardware_computes_it(monkeypatch, gpu, native_bf16, expected):
    import tensorflow as tf

    from aigc import cpus
    from aigc.engine.gan import pick_precision

    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: (["/physical_device:GPU:0"] if gpu else []) if kind == "GPU" else real(kind))
    monkeypatch.setattr(cpus, "has_native_bf16", lambda: native_bf16)
    assert pick_precision("auto") == expected
    assert pick_precision("float32") == "float32"  # an explicit choice is kept
    assert pick_precision("float32") == "float32" and pick_precision("mixed_bfloat16") == "mixed_bfloat16"


@pytest.mark.slow
def test_mixed_bfloat16_run_trains_and_ships_a_float32_generator(tmp_path, synthetic_npz):
    """The GPU path's precision, run on the CPU: finite losses, and a generator the app serves in float32."""
    from aigc.engine.checkpoints import load_generator
    from aigc.engine.sampling import generate

    run_dir = tmp_path / "bf16"
    done = subprocess.run([sys.executable, "-m", "aigc", "train", "--run-dir", str(run_dir), "--data",
                           str(synthetic_npz), "--epochs", "1", "--batch-size", "64", "--eval-samples", "0",
                           "--precision", "mixed_bfloat16"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    paths = RunPaths(run_dir)
    assert "mixed_bfloat16" in paths.log.read_text()
    epoch = [r for r in read_metrics(paths.metrics) if r["kind"] == "epoch"][-1]
    assert all(np.isfinite(epoch[k]) for k in ("g_loss", "d_loss", "d_real", "d_fake"))
    model, config, _card = load_generator(paths.generator)
    assert str(model.dtype_policy.name) == "float32"
    images, labels = generate(model, 4, 7, seed=0, config=config)
    assert images.dtype == np.float32 and np.isfinite(images).all() and 0 <= images.min() <= images.max() <= 1
    assert list(labels) == [7] * 4


@pytest.mark.slow  # real training of its own
def test_a_stop_that_lands_on_an_epochs_last_step_ends_that_epoch_first(tmp_path, synthetic_npz):
    """The stop waits for the epoch's end (samples, generator, evaluation, checkpoint): resuming must not begin
    with an empty epoch whose record says 0 img/s and has no losses."""
    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, epochs=2, max_steps=8) == "stopped"  # 8 steps = exactly epoch 1
    paths = RunPaths(run_dir)
    status = read_json(paths.status)
    assert status["epoch"] == 1 and status["step"] == 8 and status["step_in_epoch"] == 0
    assert [p.name for p in paths.sample_files()] == ["epoch_0001.png"]
    assert tiny_run(run_dir, synthetic_npz, resume=True) == "finished"
    epochs = [r for r in read_metrics(paths.metrics) if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert all(r["img_per_s"] > 0 and "g_loss" in r for r in epochs)
    assert read_json(paths.status)["step"] == 16


@pytest.mark.slow  # real training of its own
def test_a_resume_with_nothing_left_to_train_goes_straight_to_finished(tmp_path, synthetic_npz, monkeypatch):
    """A kill after the last step's checkpoint, before 'finished', leaves nothing to train: the resume must not claim
    'running' on its way to 'finished' (CI's poller once caught that window and a watcher would see a false state)."""
    from aigc.engine import run_writer

    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, epochs=1) == "finished"
    paths = RunPaths(run_dir)
    finished = read_json(paths.status)
    paths.status.write_text(json.dumps(dict(finished, state="running")))  # what the kill -9 left
    states, real_json = [], run_files.atomic_write_json

    def recording(path, payload):
        real_json(path, payload)
        if path.name == "status.json" and states[-1:] != [payload["state"]]:
            states.append(payload["state"])

    monkeypatch.setattr(run_writer, "atomic_write_json", recording)
    assert tiny_run(run_dir, synthetic_npz, resume=True) == "finished"
    assert states == ["created", "finished"]
    status = read_json(paths.status)
    assert (status["epoch"], status["step"]) == (finished["epoch"], finished["step"])
