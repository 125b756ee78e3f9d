"""Generator and discriminator per preset.

Generators use stock Keras layers only, so `keras.models.load_model` rebuilds any saved
generator without custom objects; the ModelConfig rides along inside the .keras file (see
checkpoints.py). The one layer of our own, MinibatchStddev (an optional part of D), is
registered with Keras here: importing this module lets load_model read such a discriminator.
"""
from __future__ import annotations

import keras
from keras import layers

from aigc.engine.spec import IMAGE_SHAPE, ModelConfig


@keras.saving.register_keras_serializable(package="aigc")
class MinibatchStddev(layers.Layer):
    """One more channel holding the spread of the batch (Karras et al. 2018, ProGAN): the standard deviation of
    each feature across the batch, averaged into one number. A batch of generated digits that all look alike has a
    smaller spread than a batch of real ones, so D can tell, and G is pushed toward variety."""

    def call(self, x):
        ops = keras.ops
        values = ops.cast(x, "float32")
        spread = ops.mean(ops.sqrt(ops.var(values, axis=0) + 1e-8))
        channel = ops.ones_like(x[..., :1]) * ops.cast(spread, x.dtype)
        return ops.concatenate([x, channel], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


def build_generator(config: ModelConfig) -> keras.Model:
    """Generator: z (N, latent) [+ label (N,) int] -> images (N, 28, 28, 1) in [-1, 1]."""
    if config.preset == "seed":
        return _seed_generator(config)
    return _dcgan_generator(config)


def build_discriminator(config: ModelConfig) -> keras.Model:
    """Discriminator: images (N, 28, 28, 1) in [-1, 1] [+ label (N,)] -> logits (N, 1)."""
    if config.preset == "seed":
        return _seed_discriminator()
    return _dcgan_discriminator(config)


def _seed_generator(config: ModelConfig) -> keras.Model:
    # The document's generator, layer for layer.
    z = keras.Input((config.latent_dim,), name="z")
    x = layers.Dense(256, use_bias=False)(z)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    x = layers.Dense(512)(x)
    x = layers.BatchNormalization()(x)
    x = layers.LeakyReLU()(x)
    x = layers.Dense(784, activation="tanh", dtype="float32")(x)
    images = layers.Reshape(IMAGE_SHAPE)(x)
    return keras.Model(z, images, name="seed_generator")


def _seed_discriminator() -> keras.Model:
    # The document's discriminator, layer for layer.
    images = keras.Input(IMAGE_SHAPE, name="image")
    x = layers.Conv2D(64, 3, strides=2, padding="same")(images)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Conv2D(128, 3, strides=2, padding="same")(x)
    x = layers.LeakyReLU()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Flatten()(x)
    logits = layers.Dense(1, dtype="float32")(x)
    return keras.Model(images, logits, name="seed_discriminator")


def _dcgan_generator(config: ModelConfig) -> keras.Model:
    width = config.base_filters
    z = keras.Input((config.latent_dim,), name="z")
    label = keras.Input((), dtype="int32", name="label")
    # The label enters as a learned embedding concatenated to the noise.
    embedded = layers.Embedding(config.num_classes, 50, name="label_embedding")(label)
    x = layers.Concatenate()([z, embedded])
    x = layers.Dense(7 * 7 * width * 2, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((7, 7, width * 2))(x)
    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(config.g_refine):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(1, 4, strides=2, padding="same")(x)
    images = layers.Activation("tanh", dtype="float32")(x)
    return keras.Model([z, label], images, name="dcgan_generator")


def _dcgan_discriminator(config: ModelConfig) -> keras.Model:
    width = config.base_filters
    # Optional spectral normalization (Miyato et al. 2018) of every weight layer.
    norm = layers.SpectralNormalization if config.spectral_norm else (lambda layer: layer)
    images = keras.Input(IMAGE_SHAPE, name="image")
    label = keras.Input((), dtype="int32", name="label")
    x = images
    if config.discriminator == "concat":
        # Plain conditional GAN: the label as a learned 28x28 map beside the pixels.
        label_map = layers.Embedding(config.num_classes, 28 * 28, name="label_map")(label)
        x = layers.Concatenate()([images, layers.Reshape(IMAGE_SHAPE)(label_map)])
    x = norm(layers.Conv2D(width, 4, strides=2, padding="same"))(x)
    x = layers.LeakyReLU(0.2)(x)
    if config.d_stddev:
        x = MinibatchStddev(name="minibatch_stddev")(x)
    x = norm(layers.Conv2D(width * 2, 4, strides=2, padding="same"))(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dropout(0.3)(x)
    features = layers.Flatten()(x)
    logits = norm(layers.Dense(1, dtype="float32"))(features)
    if config.discriminator == "projection":
        # Projection discriminator (Miyato & Koyama 2018): logit = w.phi(x) + <embed(y), phi(x)>.
        embedded = layers.Embedding(config.num_classes, 7 * 7 * width * 2, name="label_projection")(label)
        projection = layers.Dot(axes=1, dtype="float32")([features, embedded])
        logits = layers.Add(dtype="float32")([logits, projection])
    outputs = logits
    if config.class_head:
        # AC-GAN (Odena et al. 2017): the same features also name the digit, a direct class signal for G.
        outputs = [logits, layers.Dense(config.num_classes, dtype="float32", name="class_logits")(features)]
    return keras.Model([images, label], outputs, name="dcgan_discriminator")


def generator_inputs(config: ModelConfig, z, labels):
    """The generator's call arguments for this preset (labels ignored when unconditional)."""
    return [z, labels] if config.conditional else z


def discriminator_inputs(config: ModelConfig, images, labels):
    """The discriminator's call arguments for this preset."""
    return [images, labels] if config.conditional else images
