"""Mode-seeking regularization (--mode-seeking, MSGAN): the loss's known values, that G learns through it, that its
twins' noise is drawn like the batch's (a function of seed and step), and that it is a recorded setting."""
import numpy as np
import pytest
import tensorflow as tf

from aigc.engine.spec import BEFORE_SETTING, RunSpec, SpecError


def _gan(**settings):
    from aigc.engine.gan import GAN

    return GAN(RunSpec.resolve(batch_size=16, width=8, **settings))


def _in_replica(gan, fn, *args):
    return gan.strategy.run(fn, args=args)


def test_off_by_default_and_for_runs_saved_before_the_setting():
    assert RunSpec.resolve().mode_seeking == 0 and BEFORE_SETTING["mode_seeking"] == 0
    assert RunSpec.resolve(mode_seeking=1).mode_seeking == 1.0
    for bad in (-1, 11, "x"):
        with pytest.raises(SpecError):
            RunSpec.resolve(mode_seeking=bad)


def test_the_loss_is_the_inverse_of_image_distance_per_latent_distance():
    gan = _gan(mode_seeking=1)
    images = tf.zeros([4, 28, 28, 1])
    latents = tf.zeros([4, 100])
    # Twins 0.5 away per pixel from noise 1.0 away per coordinate: ratio 0.5, loss 1 / 0.5.
    loss = gan._mode_seeking_loss(images, images + 0.5, latents, latents + 1.0)
    assert float(loss) == pytest.approx(2.0, rel=1e-4)
    # Collapse (the same digit from different noise) costs the most: 1 / eps.
    assert float(gan._mode_seeking_loss(images, images, latents, latents - 1.0)) == pytest.approx(1e5, rel=1e-3)
    # Twice as far apart in pixels for the same noise gap: half the loss.
    assert float(gan._mode_seeking_loss(images, images - 1.0, latents, latents + 1.0)) == pytest.approx(1.0, rel=1e-4)


def test_twins_share_labels_get_their_own_noise_and_the_draw_repeats_for_the_same_step():
    gan = _gan(mode_seeking=1)
    labels = tf.constant(np.arange(16) % 10, tf.int32)
    latents = _in_replica(gan, gan._latent_slice, 16)
    fakes, twins, twin_latents = _in_replica(gan, gan._with_twins, latents, labels, 16)
    assert fakes.shape == (16, 28, 28, 1) and twins.shape == (8, 28, 28, 1) and twin_latents.shape == (8, 100)
    assert not np.allclose(twin_latents.numpy(), latents.numpy()[:8])  # stream 1, not the batch's noise
    assert np.array_equal(_in_replica(gan, gan._latent_slice, 8, 1).numpy(), twin_latents.numpy())
    assert np.array_equal(_in_replica(gan, gan._latent_slice, 16).numpy(), latents.numpy())  # stream 0 unchanged


def test_the_generator_learns_through_the_loss():
    gan = _gan(mode_seeking=1)
    labels = tf.constant(np.arange(16) % 10, tf.int32)
    latents = _in_replica(gan, gan._latent_slice, 16)

    def loss_and_grads():
        with tf.GradientTape() as tape:
            fakes, twins, twin_latents = gan._with_twins(latents, labels, 16)
            loss = gan._mode_seeking_loss(fakes[:8], twins, latents[:8], twin_latents)
        return loss, tape.gradient(loss, gan.generator.trainable_variables)

    loss, grads = _in_replica(gan, loss_and_grads)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert all(g is not None for g in grads) and sum(float(tf.reduce_sum(tf.abs(g))) for g in grads) > 0


def test_a_training_step_with_it_is_finite_and_raises_the_generator_loss():
    from aigc.engine.data import synthetic_mnist

    arrays = synthetic_mnist(32, 8)
    rows = np.arange(32, dtype=np.int32).reshape(2, 16)
    losses = {}
    for weight in (0.0, 1.0):
        gan = _gan(mode_seeking=weight, seed=3)
        before = [w.copy() for w in gan.generator.get_weights()]
        gan.attach_data(arrays["x_train"], arrays["y_train"])
        metrics = gan.train_steps(rows[:1])
        assert all(np.isfinite(float(v)) for v in metrics.values())
        assert any(not np.allclose(a, b) for a, b in zip(before, gan.generator.get_weights()))
        losses[weight] = metrics["g_loss"]
    # Same seed, same first step: the weighted term (>= 1 / the ratio, positive) adds to G's loss.
    assert losses[1.0] > losses[0.0] + 0.1
