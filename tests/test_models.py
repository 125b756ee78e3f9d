"""Model shapes, value ranges and the seed preset's exact architecture."""
import json

import numpy as np
import pytest

from aigc.engine.spec import ModelConfig, SpecError
from aigc.engine.models import build_discriminator, build_generator, discriminator_inputs, generator_inputs


@pytest.mark.parametrize("preset", ["dcgan", "seed"])
def test_shapes_and_ranges(preset):
    config = ModelConfig(preset=preset)
    generator, discriminator = build_generator(config), build_discriminator(config)
    z = np.random.default_rng(0).standard_normal((5, config.latent_dim)).astype(np.float32) * 3
    labels = np.arange(5, dtype=np.int32)
    images = np.asarray(generator(generator_inputs(config, z, labels), training=False))
    assert images.shape == (5, 28, 28, 1)
    assert images.min() >= -1.0 and images.max() <= 1.0
    logits = np.asarray(discriminator(discriminator_inputs(config, images, labels), training=False))
    assert logits.shape == (5, 1) and np.isfinite(logits).all()


def test_seed_preset_is_the_documents_system():
    config = ModelConfig(preset="seed")
    generator = build_generator(config)
    kinds = [type(layer).__name__ for layer in generator.layers[1:]]
    assert kinds == ["Dense", "BatchNormalization", "LeakyReLU", "Dense", "BatchNormalization", "LeakyReLU",
                     "Dense", "Reshape"]
    dense = [layer for layer in generator.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [256, 512, 784]
    assert dense[0].use_bias is False and dense[2].activation.__name__ == "tanh"
    assert generator.input_shape == (None, 100)
    discriminator = build_discriminator(config)
    kinds = [type(layer).__name__ for layer in discriminator.layers[1:]]
    assert kinds == ["Conv2D", "LeakyReLU", "Dropout", "Conv2D", "LeakyReLU", "Dropout", "Flatten", "Dense"]
    convs = [layer for layer in discriminator.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size, c.strides, c.padding) for c in convs] == [
        (64, (3, 3), (2, 2), "same"), (128, (3, 3), (2, 2), "same")]
    assert [layer.rate for layer in discriminator.layers if type(layer).__name__ == "Dropout"] == [0.3, 0.3]


def test_dcgan_is_class_conditional():
    config = ModelConfig()
    generator = build_generator(config)
    z = np.zeros((2, config.latent_dim), np.float32)
    seven, one = (np.asarray(generator([z, np.full(2, d, np.int32)], training=False)) for d in (7, 1))
    assert not np.allclose(seven, one), "the label must change the image"


def test_unknown_preset_is_refused():
    with pytest.raises(SpecError, match="--preset: must be one of dcgan, seed, got 'vae'"):
        ModelConfig(preset="vae")


@pytest.mark.parametrize("discriminator, spectral_norm", [("concat", False), ("projection", True)])
def test_discriminator_variants(discriminator, spectral_norm):
    config = ModelConfig(discriminator=discriminator, spectral_norm=spectral_norm)
    model = build_discriminator(config)
    images = np.zeros((3, 28, 28, 1), np.float32)
    logits = np.asarray(model([images, np.array([1, 2, 3], np.int32)], training=True))
    assert logits.shape == (3, 1) and np.isfinite(logits).all()
    kinds = {type(layer).__name__ for layer in model.layers}
    assert ("SpectralNormalization" in kinds) == spectral_norm
    assert ("Dot" in kinds) == (discriminator == "projection")
    assert ModelConfig.from_dict(json.loads(config.to_json())) == config


def test_g_refine_adds_3x3_convolutions_at_14x14_and_travels_with_the_file(tmp_path):
    from aigc.engine.checkpoints import load_generator, read_meta, save_model_file
    from aigc.engine.spec import RunSpec

    plain, refined = (build_generator(RunSpec.resolve(g_refine=n).model) for n in (0, 2))
    convs = [layer for layer in refined.layers if type(layer).__name__ == "Conv2D"]
    assert not [layer for layer in plain.layers if type(layer).__name__ == "Conv2D"]
    assert [(c.filters, c.kernel_size, c.padding, c.output.shape[1:3]) for c in convs] == [
        (48, (3, 3), "same", (14, 14))] * 2
    config = RunSpec.resolve(g_refine=2).model
    z, labels = np.zeros((2, config.latent_dim), np.float32), np.array([3, 4], np.int32)
    assert np.asarray(refined([z, labels], training=False)).shape == (2, 28, 28, 1)
    path = tmp_path / "g.keras"
    save_model_file(refined, path, config=config)
    assert read_meta(path)[0].g_refine == 2 and load_generator(path)[1] == config
    # A card written before the setting (no g_refine) is a generator without refinement.
    old = json.loads(config.to_json())
    del old["g_refine"]
    assert ModelConfig.from_dict(old).g_refine == 0


def test_g_refine_is_for_dcgan_only_and_bounded():
    from aigc.engine.spec import BEFORE_SETTING, RunSpec

    assert RunSpec.resolve().g_refine == 0 and BEFORE_SETTING["g_refine"] == 0
    with pytest.raises(SpecError, match="--g-refine"):
        RunSpec.resolve(preset="seed", g_refine=1)
    with pytest.raises(SpecError):
        RunSpec.resolve(g_refine=5)


def test_minibatch_stddev_adds_the_batchs_spread_as_one_channel():
    from aigc.engine.models import MinibatchStddev

    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 14, 14, 4)).astype(np.float32)
    out = np.asarray(MinibatchStddev()(x))
    assert out.shape == (6, 14, 14, 5)
    np.testing.assert_array_equal(out[..., :4], x)
    expected = np.sqrt(x.var(axis=0) + 1e-8).mean()  # population std per feature, averaged
    np.testing.assert_allclose(out[..., 4], expected, rtol=1e-5)
    # A batch of one digit repeated (G collapsed) has no spread; the same images among real variety have some.
    same = np.repeat(x[:1], 6, axis=0)
    assert np.asarray(MinibatchStddev()(same))[..., 4].max() < 1e-3 < expected


def test_d_stddev_sits_before_ds_second_convolution_and_travels_with_the_file(tmp_path):
    from aigc.engine.checkpoints import load_discriminator, read_meta, save_model_file
    from aigc.engine.spec import BEFORE_SETTING, RunSpec

    assert RunSpec.resolve().d_stddev is False and BEFORE_SETTING["d_stddev"] is False
    config = RunSpec.resolve(d_stddev=True).model
    model = build_discriminator(config)
    names = [layer.name for layer in model.layers]
    stddev = model.get_layer("minibatch_stddev")
    assert stddev.output.shape[1:] == (14, 14, 48 + 1)
    assert type(model.layers[names.index("minibatch_stddev") + 1]).__name__ == "Conv2D"
    images = np.random.default_rng(1).uniform(-1, 1, (4, 28, 28, 1)).astype(np.float32)
    labels = np.array([1, 2, 3, 4], np.int32)
    before = [np.asarray(o) for o in model([images, labels], training=False)]
    path = tmp_path / "d.keras"
    save_model_file(model, path, config=config)
    loaded, loaded_config, _card = load_discriminator(path)
    assert read_meta(path)[0].d_stddev is True and loaded_config == config
    for a, b in zip(before, [np.asarray(o) for o in loaded([images, labels], training=False)]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    old = json.loads(config.to_json())
    del old["d_stddev"]
    assert ModelConfig.from_dict(old).d_stddev is False
    with pytest.raises(SpecError, match="--d-stddev"):
        RunSpec.resolve(preset="seed", d_stddev=True)


def test_training_steps_with_d_stddev_are_finite_with_r1_through_the_layer_every_step():
    from aigc.engine.data import synthetic_mnist
    from aigc.engine.gan import GAN
    from aigc.engine.spec import RunSpec

    arrays = synthetic_mnist(32, 8)
    gan = GAN(RunSpec.resolve(batch_size=16, width=8, d_stddev=True, r1_every=1))
    gan.attach_data(arrays["x_train"], arrays["y_train"])
    metrics = gan.train_steps(np.arange(32, dtype=np.int32).reshape(2, 16))
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert int(gan.d_optimizer.iterations) == 2
