"""The Streamlit script through AppTest: every view renders, Generate is deterministic, bad input is handled."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from aigc.settings import SHIPPED_DIR, SHIPPED_FILES
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths
from aigc.engine.spec import RunSpec
from aigc.runs.lock import TrainingLock
from helpers import APP, APP_TIMEOUT, assert_clean, grid_url, registered_paths, run_app, texts, visit, write_fake_run


def test_the_app_replaces_no_library_function_and_survives_keras_clear_session(app_env, tmp_path):
    """Streamlit calls keras.backend.clear_session() after every run: the app leaves it alone and still serves."""
    import keras
    from keras.src.backend.common import global_state

    from aigc.engine.checkpoints import load_generator
    from aigc.engine.sampling import latents, run_generator
    from helpers import save_untrained_generator

    app = run_app(digit=7, n=4, seed=5)
    assert_clean(app)
    assert keras.backend.clear_session is global_state.clear_session  # no monkeypatch of Keras
    model, config, _card = load_generator(save_untrained_generator(tmp_path / "generator.keras"))
    z, labels = latents(4, config.latent_dim, seed=1), np.arange(4, dtype=np.int32)
    before = run_generator(model, z, labels)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")  # what a trainer in this thread would leave
    keras.backend.clear_session()
    assert keras.mixed_precision.global_policy().name == "float32"  # the policy does not leak into serving
    np.testing.assert_array_equal(run_generator(model, z, labels), before)  # a loaded model draws the same


def test_generate_view_renders_and_is_deterministic(app_env):
    app = run_app(digit=7, n=16, seed=5)
    assert_clean(app)
    first = grid_url(app)
    assert "16 x digit 7 - seed 5" in app.image[0].captions[0]
    assert app.query_params["digit"] == ["7"] or app.query_params["digit"] == "7"
    assert grid_url(run_app(digit=7, n=16, seed=5)) == first  # same link, same grid
    for key, value in (("gen_digit", "3"), ("gen_seed", 6), ("gen_n", 9)):
        widget = app.selectbox(key=key) if key == "gen_digit" else app.number_input(key=key)
        widget.set_value(value)
        app.button[0].click().run()
        assert_clean(app)
        assert grid_url(app) != first
        first = grid_url(app)
    assert "9 x digit 3 - seed 6" in app.image[0].captions[0]


@pytest.mark.slow
def test_long_lived_heap_is_frozen_once_after_the_first_page(app_env):
    """Streamlit's gc.collect(2) after each run must not walk TensorFlow's heap (it stalled every click)."""
    code = f"""
import gc
from streamlit.testing.v1 import AppTest
calls, freeze = [], gc.freeze
gc.freeze = lambda: calls.append(1) or freeze()
app = AppTest.from_file({APP!r}, default_timeout={APP_TIMEOUT}).run()
app.button[0].click().run()
assert not app.exception and len(calls) == 1, (app.exception, calls)
print(gc.get_freeze_count(), len(gc.get_objects()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=os.environ)
    assert done.returncode == 0, done.stderr[-3000:]
    frozen, tracked = map(int, done.stdout.split()[-2:])
    assert frozen > 100_000 and tracked < frozen // 10, (frozen, tracked)  # what a collection still walks


def test_bad_query_parameters_fall_back_with_notices(app_env):
    app = run_app(digit=11, n=0, seed="text")
    assert_clean(app)
    warnings = " ".join(texts(app, "warning"))
    assert "digit='11'" in warnings and "n='0'" in warnings and "seed='text'" in warnings
    assert "16 x any digit - seed 0" in app.image[0].captions[0]
    assert run_app(n=10**6).warning[0].value.startswith("Link parameter ignored: n=")


def test_interpolation_strip_and_gif(app_env):
    app = run_app()
    urls = [image.value[0] for image in app.image]
    # the grid, one style-slider preview strip per direction (issue 12: shown by default), the strip, the GIF
    assert any(url.endswith(".gif") for url in urls) and len(urls) == 6
    captions = [caption for image in app.image for caption in image.captions]
    assert sum(caption.endswith(": -2 ... +2") for caption in captions) == 3
    assert [b.label for b in app.get("download_button")] == ["Download PNG", "Download GIF"]


def test_model_view_shows_both_architectures_and_card(app_env):
    app = run_app(view="model")
    assert_clean(app)
    markdown = " ".join(texts(app, "markdown"))
    assert "dcgan_generator" in markdown and "dcgan_discriminator" in markdown and "parameters" in markdown
    assert len(app.table) >= 2  # the card and its numbers (fdd)


def test_seed_preset_is_unconditional(app_env):
    app = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    app.run()
    app.sidebar.selectbox(key="generator_choice").set_value("Seed preset").run()
    assert_clean(app)
    assert app.selectbox(key="gen_digit").disabled
    assert "any digit" in app.image[0].captions[0]


def test_no_generator_says_so(app_env, monkeypatch, tmp_path):
    monkeypatch.setenv("AIGC_CHECKPOINT_DIR", str(tmp_path / "empty"))
    app = run_app()
    assert not app.exception
    assert "No generator is available yet" in " ".join(texts(app, "info"))


def test_corrupt_run_generator_falls_back_to_shipped(app_env):
    run = RunPaths(app_env / "run-bad")
    atomic_write_json(run.status, {"state": "finished"})
    run.generator.write_bytes(b"PK\x03\x04 truncated")
    app = AppTest.from_file(APP, default_timeout=APP_TIMEOUT)
    app.run()
    app.sidebar.selectbox(key="generator_choice").set_value("Newest trained run").run()
    assert not app.exception
    assert "serving Shipped" in " ".join(texts(app, "warning"))
    assert str(app_env) not in " ".join(texts(app, "warning"))  # server folders are not shown
    assert app.image  # still generating


def test_train_view_shows_the_finished_run(app_env):
    write_fake_run(app_env, state="finished")
    app = run_app(view="train")
    assert_clean(app)
    assert "State: **finished**" in texts(app, "markdown")
    assert "new generator is ready" in " ".join(texts(app, "success"))
    assert len(app.get("plotly_chart")) == 3  # losses, D outputs, quality per epoch
    assert "found 4 absent or rare" in " ".join(texts(app, "warning"))  # the collapse warning
    assert app.select_slider[0].value == 2  # the newest epoch's grid first
    assert "AIGC_MNIST" in " ".join(texts(app, "warning"))  # says how to provide the data
    assert not any(b.label.startswith("Resume") for b in app.button), "a finished run has nothing to resume"


def test_the_first_epoch_in_progress_shows_its_live_grid_and_quick_checks(app_env):
    """Before any epoch ends: the quality chart from the quick checks and the live grid, not an empty panel."""
    run = RunPaths(app_env / "run-fake")
    atomic_write_json(run.status, {"state": "stopped", "epoch": 0, "total_epochs": 1, "steps_per_epoch": 100,
                                   "step": 60, "step_in_epoch": 60, "updated_at": time.time()})
    records = [{"kind": "step", "step": s, "epoch": 1, "g_loss": 1.0, "d_loss": 1.2, "d_real": 0.6, "d_fake": 0.4}
               for s in (20, 40, 60)]
    records += [{"kind": "probe", "step": s, "epoch": s / 100, "images": 32 * s, "class_accuracy": 0.5 + s / 200,
                 "fdd": 300.0 - 3 * s, "digit_score": 5.0} for s in (30, 60)]
    run.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    run.samples.mkdir(parents=True)
    Image.fromarray(np.full((30, 30), 90, np.uint8)).save(run.live_sample)
    atomic_write_json(run.config, {"spec": RunSpec.resolve(epochs=1).to_dict()})
    app = run_app(view="train")
    assert_clean(app)
    assert "**Fixed-seed samples, first epoch in progress** (row = digit 0-9)" in texts(app, "markdown")
    assert len(app.get("image")) == 1
    assert len(app.get("plotly_chart")) == 3  # losses, D outputs, and quality from the quick checks


def test_a_failed_run_shows_one_line_without_traceback_or_server_path(app_env):
    secret = str(app_env.parent / "secret" / "mnist.npz")
    run = write_fake_run(app_env, state="failed", error=f"DataError: {secret} is missing key(s) y_train")
    run.log.write_text(f"Traceback (most recent call last):\n  File \"{secret}\", line 1\nCUDA noise\n")
    app = run_app(view="train")
    assert not app.exception
    page = " ".join(texts(app, "error") + texts(app, "markdown") + texts(app, "warning") + texts(app, "info"))
    assert "The trainer failed: DataError: mnist.npz is missing key(s) y_train" in texts(app, "error")[0]
    assert "Traceback" not in page and str(app_env.parent) not in page and not app.code
    assert any(b.label == "Resume run-fake" for b in app.button)  # Resume where Stop was


def test_a_cluster_run_says_workers_times_replicas(app_env):
    run = write_fake_run(app_env, state="stopped")
    atomic_write_json(run.status, dict(json.loads(run.status.read_text()), workers=2, replicas=1))
    app = run_app(view="train")
    assert "State: **stopped** - 2 workers x 1 replica" in texts(app, "markdown")


def test_a_skipped_damaged_checkpoint_is_shown(app_env):
    run = write_fake_run(app_env, state="stopped")
    status = json.loads(run.status.read_text())
    atomic_write_json(run.status, dict(status, warning="skipped damaged checkpoint(s) (ckpt-40: DataLossError)"))
    app = run_app(view="train")
    assert "skipped damaged checkpoint(s) (ckpt-40" in " ".join(texts(app, "warning"))


def test_a_stale_running_status_whose_pid_lives_reads_as_interrupted(app_env):
    """status.json says running with this test's own pid (alive), but nobody holds the lock."""
    write_fake_run(app_env, state="running", pid=os.getpid())
    app = run_app(view="train")
    assert "State: **failed**" in texts(app, "markdown")
    assert "ended without saying why" in texts(app, "error")[0]
    assert any(b.label == "Resume run-fake" for b in app.button) and not any(b.label == "Stop" for b in app.button)


def test_start_is_disabled_with_the_reason_while_a_job_runs(app_env):
    write_fake_run(app_env, state="running", pid=os.getpid())
    lock = TrainingLock(app_env)
    assert lock.acquire(app_env / "run-fake")
    try:
        app = run_app(view="train")
        assert not app.exception
        assert "State: **running**" in texts(app, "markdown")
        assert any(b.label == "Stop" for b in app.button)
        start = [b for b in app.button if b.label == "Start training"][0]
        assert start.disabled
        assert "A job is running" in " ".join(texts(app, "caption"))
        [b for b in app.button if b.label == "Stop"][0].click().run()
        assert "State: **stopping**" in texts(app, "markdown")
        assert "Stopping..." in " ".join(texts(app, "warning"))
        assert not any(b.label == "Stop" for b in app.button)
    finally:
        lock.release()


def test_a_bad_mnist_file_is_refused_before_any_run_folder(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_MNIST", str(tmp_path / "absent.npz"))
    bad = tmp_path / "wrong_keys.npz"
    np.savez(bad, images=np.zeros((4, 28, 28), np.uint8))
    app = run_app(view="train")
    app.text_input(key="job_data").input(str(bad))
    app.radio(key="job_init").set_value("From scratch")
    [b for b in app.button if b.label == "Start training"][0].click().run()
    errors = " ".join(texts(app, "error"))
    assert "wrong_keys.npz is missing key x_train" in errors and str(tmp_path) not in errors
    assert not app_env.exists() or not [p for p in app_env.iterdir() if p.is_dir()]


def test_runs_list_shows_and_deletes_runs_that_are_not_training(app_env):
    write_fake_run(app_env, state="stopped")
    app = run_app(view="train")
    table = app.dataframe[0].value
    assert list(table["run"]) == ["run-fake"] and list(table["state"]) == ["stopped"]
    app.selectbox(key="delete_choice").set_value("run-fake")
    app.button(key="delete_button").click().run()
    assert (app_env / "run-fake").exists()  # a delete asks first
    app.button(key="delete_confirm").click().run()
    assert not (app_env / "run-fake").exists()
    assert "Deleted run-fake." in texts(app, "success")


@pytest.mark.parametrize("status, expected", [
    ({"state": "finished", "epoch": 2, "total_epochs": 2, "steps_per_epoch": 468, "step_in_epoch": 0}, "Epoch 2/2"),
    ({"state": "stopped", "epoch": 1, "total_epochs": 2, "steps_per_epoch": 468, "step_in_epoch": 5,
      "img_per_s": 900.0, "eta_s": 30}, "Epoch 2/2 - step 5/468"),
    ({"state": "stopped", "epoch": 13, "current_epoch": 13, "total_epochs": 30, "steps_per_epoch": 4,
      "step_in_epoch": 3}, "Epoch 14/30 - step 3/4"),
    ({"state": "failed", "epoch": 1, "total_epochs": 2, "steps_per_epoch": 468, "step_in_epoch": 0}, "Epoch 1/2"),
    ({"state": "running", "epoch": 0, "current_epoch": 1, "total_epochs": 2, "steps_per_epoch": 10,
      "step_in_epoch": 3, "img_per_s": 812.4, "eta_s": 63}, "Epoch 1/2 - step 3/10 - ETA 1 min 3 s - 812 img/s"),
])
def test_progress_text_says_only_what_is_true_in_each_state(status, expected):
    from aigc.app.pages.train import progress_text

    assert progress_text(status) == expected


def test_training_off_hides_the_view(app_env, monkeypatch):
    monkeypatch.setenv("AIGC_TRAINING", "off")
    app = run_app(view="train")
    assert not app.exception
    # No Train page in the menu: /train is only the hidden page that says training is off (test_hosted_visitors).
    titles = {info.get("url_pathname"): info.get("page_name") for info in app._registered_pages.values()}
    assert "generate" in registered_paths(app) and titles.get("train") == "Train"
    assert app.image and not any(b.label == "Start training" for b in app.button)  # fell back to Generate


def test_password_mode(app_env, monkeypatch):
    monkeypatch.setenv("AIGC_TRAINING", "password")
    monkeypatch.setenv("AIGC_TRAINING_PASSWORD", "open sesame")
    app = run_app(view="train")
    assert not any(b.label == "Start training" for b in app.button)
    app.text_input(key="train_password").input("wrong")
    app.button[0].click().run()
    assert "Wrong password." in texts(app, "error")
    app.text_input(key="train_password").input("open sesame")
    app.button[0].click().run()
    assert any(b.label == "Start training" for b in app.button)


def test_epochs_are_capped_by_policy(app_env, monkeypatch):
    monkeypatch.setenv("AIGC_MAX_EPOCHS", "3")
    app = run_app(view="train")
    assert app.number_input(key="job_epochs").max == 3


@pytest.mark.skipif(not (SHIPPED_DIR / SHIPPED_FILES["dcgan"]).exists(), reason="the shipped generator is not committed yet")
def test_views_render_on_the_shipped_generator(monkeypatch, tmp_path):
    monkeypatch.delenv("AIGC_CHECKPOINT_DIR", raising=False)
    monkeypatch.setenv("AIGC_RUNS_DIR", str(tmp_path / "runs"))
    st.cache_resource.clear()
    for view in ("generate", "model", "train"):
        app = run_app(view=view, digit=7, n=4, seed=1)
        assert_clean(app)


def test_nearest_training_image_finds_an_exact_copy():
    from aigc.engine.data import synthetic_mnist
    from aigc.explore.nearest import nearest_training

    x_train = synthetic_mnist(300, 10)["x_train"].reshape(-1, 784)
    norms = np.einsum("ij,ij->i", x_train / 255.0, x_train / 255.0).astype(np.float32)
    queries = x_train[[5, 123]].reshape(-1, 28, 28).astype(np.float32) / 255
    index, distance = nearest_training(queries, x_train, norms)
    assert list(index) == [5, 123] and np.allclose(distance, 0, atol=1e-2)


def test_nearest_training_view(app_env, monkeypatch, tmp_path):
    from aigc.engine.data import synthetic_mnist

    np.savez(tmp_path / "mnist.npz", **synthetic_mnist(256, 16))
    monkeypatch.setenv("AIGC_MNIST", str(tmp_path / "mnist.npz"))
    app = run_app(n=4)
    app.button(key="nearest").click().run()
    assert_clean(app)
    assert any("distances:" in caption for image in app.image for caption in image.captions)


def test_generate_settings_survive_a_visit_to_another_view(app_env):
    app = run_app(digit=4, n=9, seed=21)
    visit(app, "model")
    assert_clean(app)
    assert "dcgan_generator" in " ".join(texts(app, "markdown"))
    visit(app, "generate")
    assert_clean(app)
    assert "9 x digit 4 - seed 21" in app.image[0].captions[0]
