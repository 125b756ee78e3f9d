"""DiffAugment's translation for the discriminator (--augment-shift): what D sees, how G learns through it, and that
it is a recorded setting like any other."""
import numpy as np
import pytest
import tensorflow as tf

from aigc.engine.spec import BEFORE_SETTING, RunSpec, SpecError


def _gan(**settings):
    from aigc.engine.gan import GAN

    return GAN(RunSpec.resolve(preset="seed", batch_size=16, **settings))


def _augment(gan, images, stream=1):
    return gan.strategy.run(gan._augment, args=(images, stream))


def _images(n=16, size=28):
    rng = np.random.default_rng(0)
    return tf.constant(rng.uniform(-1, 1, (n, size, size, 1)).astype(np.float32))


def test_off_by_default_and_for_runs_saved_before_the_setting():
    assert RunSpec.resolve().augment_shift == 0 and BEFORE_SETTING["augment_shift"] == 0
    images = _images()
    assert _augment(_gan(), images) is images
    with pytest.raises(SpecError):
        RunSpec.resolve(augment_shift=9)


def test_each_image_is_itself_shifted_by_at_most_n_pixels_with_background_filled_in():
    shift = 2
    images = _images()
    seen = _augment(_gan(augment_shift=shift), images).numpy()
    padded = np.pad(images.numpy(), [(0, 0), (shift, shift), (shift, shift), (0, 0)], constant_values=-1.0)
    offsets = []
    for original, out in zip(padded, seen):
        found = [(dy, dx) for dy in range(2 * shift + 1) for dx in range(2 * shift + 1)
                 if np.array_equal(out, original[dy:dy + 28, dx:dx + 28])]
        assert len(found) == 1
        offsets.append(found[0])
    assert len(set(offsets)) > 4  # a shift per image, not one per batch


def test_the_generator_learns_through_the_shift_and_the_draw_repeats_for_the_same_step():
    gan = _gan(augment_shift=3)
    images = _images()
    with tf.GradientTape() as tape:
        tape.watch(images)
        seen = _augment(gan, images)
        total = tf.reduce_sum(seen)
    gradient = tape.gradient(total, images).numpy()
    assert set(np.unique(gradient)) <= {0.0, 1.0} and gradient.sum() == pytest.approx((seen.numpy() != -1.0).sum(), abs=50)
    assert gradient.sum() > 0.5 * gradient.size  # most pixels stay in view after a shift of at most 3 of 28
    assert np.array_equal(_augment(gan, images).numpy(), seen.numpy())  # (seed, step, stream): a resume redraws it
    assert not np.array_equal(_augment(gan, images, stream=2).numpy(), seen.numpy())  # real and fake: own shifts


def test_a_training_step_with_the_shift_is_finite_and_trains_both_networks():
    from aigc.engine.data import synthetic_mnist

    arrays = synthetic_mnist(32, 8)
    gan = _gan(augment_shift=2, lr_g=2e-4, lr_d=2e-4)
    before = [w.copy() for w in gan.generator.get_weights()]
    gan.attach_data(arrays["x_train"], arrays["y_train"])
    metrics = gan.train_steps(np.arange(32, dtype=np.int32).reshape(2, 16))
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert any(not np.allclose(a, b) for a, b in zip(before, gan.generator.get_weights()))
