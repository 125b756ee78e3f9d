"""The default recipe's parts: the class head, the learning-rate and class-loss schedule, the first epoch's
quick checks and live grid, and training more from files with a class head."""
import json

import numpy as np
import pytest

from aigc.engine.spec import RunSpec
from aigc.runs.files import read_metrics
from aigc.runs.layout import RunPaths

from helpers import tiny_run


def test_set_schedule_changes_the_next_steps():
    from aigc.engine.gan import GAN

    gan = GAN(RunSpec.resolve(width=64, lr_g=2e-4, lr_d=3e-4, ema_decay=0.0, batch_size=8, class_loss=1.0))
    gan.set_schedule(1e-5, 2e-5, class_weight=0.25)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(1e-5)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(2e-5)
    assert float(gan.class_loss) == 0.25


def test_the_class_boost_reaches_the_step_even_without_a_learning_rate_schedule():
    """With constant learning rates (lr_half_life 0) the schedule still has the boost to follow."""
    from aigc.engine.gan import GAN

    gan = GAN(RunSpec.resolve(width=16, ema_decay=0.0, batch_size=8, lr_half_life=0, class_boost=2.0,
                              class_boost_half_life=0.5))
    gan.follow_schedule(0.0)
    assert float(gan.class_loss) == pytest.approx(3.0) and float(gan.g_optimizer.learning_rate) == pytest.approx(2e-3)
    gan.follow_schedule(1.0)
    assert float(gan.class_loss) == pytest.approx(1.5)


def test_the_first_epoch_shows_quick_checks_and_a_live_grid(trained_run):
    """A from-scratch visitor sees quality points and the forming digits before the first epoch ends."""
    paths = RunPaths(trained_run)  # conftest's run: epochs=2, probe_seconds=1e-6, eval_samples=100
    records = read_metrics(paths.metrics)
    probes = [r for r in records if r["kind"] == "probe"]
    # 8 steps per epoch in calls of 2 steps: a check after each call but the epoch's last, and none in epoch 2
    assert [r["epoch"] for r in probes] == [0.25, 0.5, 0.75]
    assert [r["images"] for r in probes] == [128, 256, 384]
    assert all(0 <= r["class_accuracy"] <= 1 and r["fdd"] > 0 for r in probes)
    assert paths.live_sample.is_file() and paths.live_sample.read_bytes().startswith(b"\x89PNG")
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]

@pytest.mark.slow  # real training of its own
def test_quick_checks_can_be_turned_off(tmp_path, synthetic_npz):
    assert tiny_run(tmp_path / "run", synthetic_npz, probe_seconds=0, eval_samples=100) == "finished"
    assert not any(r["kind"] == "probe" for r in read_metrics(RunPaths(tmp_path / "run").metrics))
    assert not RunPaths(tmp_path / "run").live_sample.exists()

@pytest.mark.slow  # real training of its own
def test_learning_rates_halve_every_half_life_and_resume_on_schedule(tmp_path, synthetic_npz):
    import tensorflow as tf

    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, epochs=1, lr_half_life=1.0, lr_g=1e-3, lr_d=2e-3, max_steps=4) == "stopped"
    assert tiny_run(run_dir, synthetic_npz, resume=True) == "finished"
    paths = RunPaths(run_dir)
    reader = tf.train.load_checkpoint(str(tf.train.latest_checkpoint(str(paths.ckpt))))
    rates = {name.split("/")[0]: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
             if "learning_rate" in name and "optimizer" in name}
    # The last call (steps 7-8 of 8) trained at 6/8 of an epoch: 0.5 ** 0.75 of the starting rates.
    assert rates["g_optimizer"] == pytest.approx(1e-3 * 0.5 ** 0.75, rel=1e-5)
    assert rates["d_optimizer"] == pytest.approx(2e-3 * 0.5 ** 0.75, rel=1e-5)
    assert "learning rates halve every 1 epoch\n" in paths.log.read_text()

@pytest.mark.slow  # real training of its own
def test_the_schedule_counts_the_epochs_behind_the_starting_weights(tmp_path, synthetic_npz):
    """Train more from a 30-epoch generator: its schedule is long past the start, so it trains at the floor rate
    (1/16), not at the from-scratch rate that would undo the shipped quality."""
    import tensorflow as tf

    from helpers import save_untrained_generator

    weights = save_untrained_generator(tmp_path / "g.keras", card={"preset": "dcgan", "epochs": 30})
    run_dir = tmp_path / "run"
    assert tiny_run(run_dir, synthetic_npz, init_from=str(weights), lr_half_life=3.0, lr_g=1e-3, lr_d=2e-3) == "finished"
    paths = RunPaths(run_dir)
    assert json.loads(paths.config.read_text())["base_epochs"] == 30
    reader = tf.train.load_checkpoint(str(tf.train.latest_checkpoint(str(paths.ckpt))))
    rates = {name.split("/")[0]: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
             if "learning_rate" in name and "optimizer" in name}
    assert rates["g_optimizer"] == pytest.approx(1e-3 / 16) and rates["d_optimizer"] == pytest.approx(2e-3 / 16)
    assert "counted from the 30 epochs behind the starting weights" in paths.log.read_text()

@pytest.mark.slow  # real training of its own (the session's trained run has the class head)
def test_the_class_head_names_digits_and_its_loss_trains_both_networks():
    """AC-GAN: with class_loss > 0 the discriminator also outputs 10 class logits; the class loss moves its head
    and reaches the generator (a step at class_loss 1 differs from a step without it from the same weights)."""
    import keras

    from aigc.engine.data import synthetic_mnist
    from aigc.engine.gan import GAN

    arrays = synthetic_mnist(32, 8)
    pixels, labels = arrays["x_train"], arrays["y_train"].astype(np.int32)
    images = (pixels.astype(np.float32) / 127.5 - 1.0)[..., None]
    results = []
    for class_loss in (1.0, 1e-9):
        keras.utils.set_random_seed(3)
        gan = GAN(RunSpec.resolve(width=16, lr_g=1e-3, lr_d=1e-3, ema_decay=0.0, r1_gamma=0.0, batch_size=32,
                                  class_loss=class_loss))
        logits, classes = gan.discriminator([images, labels], training=False)
        assert logits.shape == (32, 1) and classes.shape == (32, 10)
        head = [w for w in gan.discriminator.weights if "class_logits" in w.path][0].numpy().copy()
        gan.attach_data(pixels, labels)
        metrics = gan.train_steps(np.arange(32, dtype=np.int32)[None])
        assert all(np.isfinite(float(v)) for v in metrics.values())
        results.append((float(metrics["g_loss"]), float(metrics["d_loss"]),
                        [w for w in gan.discriminator.weights if "class_logits" in w.path][0].numpy() - head))
    (g_with, d_with, moved), (g_without, d_without, _moved) = results
    assert np.abs(moved).max() > 1e-4  # the head learned
    assert g_with > g_without + 1.0 and d_with > d_without + 1.0  # + about ln(10) of cross-entropy at the start
    assert GAN(RunSpec.resolve(width=16, class_loss=1.0)).config.class_head  # the head follows the spec's class loss

@pytest.mark.slow  # trains a run of its own
def test_train_more_from_a_generator_with_a_class_head_and_its_discriminator(tmp_path, synthetic_npz, trained_run):
    """The shipped files since issue 13: a generator and a two-output discriminator (logit + 10 class logits)."""
    from aigc.engine.checkpoints import load_discriminator

    paths = RunPaths(trained_run)
    model, config, _card = load_discriminator(paths.discriminator)
    assert config.class_head and [tuple(s) for s in model.output_shape] == [(None, 1), (None, 10)]
    more = tmp_path / "more"
    assert tiny_run(more, synthetic_npz, init_from=str(paths.generator)) == "finished"
    assert "initialised from generator.keras" in RunPaths(more).log.read_text()
    assert json.loads(RunPaths(more).config.read_text())["spec"]["class_loss"] == 1.0


@pytest.mark.slow  # real training of its own
def test_a_run_in_this_process_puts_the_precision_policy_back(tmp_path, synthetic_npz):
    """bf16 is the default on CPUs that compute it: a run inside another program (the tests, a notebook) must not
    leave that program building and loading models in mixed precision."""
    import keras

    assert keras.mixed_precision.global_policy().name == "float32"
    assert tiny_run(tmp_path / "run", synthetic_npz, precision="mixed_bfloat16") == "finished"
    assert keras.mixed_precision.global_policy().name == "float32"
    assert "mixed_bfloat16" in RunPaths(tmp_path / "run").log.read_text()


def _real_gradient_norms(gan, images, labels) -> float:
    """Mean ||grad_x D(x)||^2 of the discriminator's logit at these images (inference mode)."""
    import tensorflow as tf

    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits, _classes = gan.discriminator([x, tf.constant(labels)], training=False)
        total = tf.reduce_sum(logits)
    return float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.gradient(total, x)), axis=[1, 2, 3])))


@pytest.mark.slow  # real training of its own
def test_the_r1_penalty_keeps_the_discriminator_flat_at_real_images():
    """R1 (Mescheder et al. 2018): trained from the same weights on the same batches, a discriminator with the
    penalty has a far smaller gradient at the real images than one without (that sharpening is what drove the
    recipe's FDD up after its best epochs). The penalty is a D loss only: G's loss is the same function."""
    import keras

    from aigc.engine.data import synthetic_mnist
    from aigc.engine.gan import GAN

    arrays = synthetic_mnist(64, 8)
    pixels, labels = arrays["x_train"], arrays["y_train"].astype(np.int32)
    images = (pixels.astype(np.float32) / 127.5 - 1.0)[..., None]
    rows = np.random.default_rng(0).integers(0, 64, (40, 16)).astype(np.int32)
    norms = {}
    for gamma in (0.0, 10.0):
        keras.utils.set_random_seed(5)
        gan = GAN(RunSpec.resolve(width=16, lr_g=1e-3, lr_d=3e-3, ema_decay=0.0, batch_size=16, class_loss=1.0,
                                  lr_half_life=0.0, r1_gamma=gamma))
        gan.attach_data(pixels, labels)
        for start in range(0, len(rows), 8):
            metrics = gan.train_steps(rows[start:start + 8])
        assert all(np.isfinite(v) for v in metrics.values())
        norms[gamma] = _real_gradient_norms(gan, images, labels)
    assert norms[10.0] < 0.25 * norms[0.0], norms


def test_runs_saved_before_the_r1_penalty_resume_without_it():
    from aigc.engine.run_plan import spec_of

    assert RunSpec.from_dict({"preset": "dcgan"}).r1_gamma == 0.0
    assert spec_of({"model_config": {"preset": "dcgan"}}).r1_gamma == 0.0  # made before run specs existed
    assert RunSpec.resolve(preset="seed").r1_gamma == 0.0
