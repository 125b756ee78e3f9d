"""The TensorFlow DCGAN tutorial (tensorflow.org/tutorials/generative/dcgan), as the benchmark's reference.

Generator, discriminator, losses, optimizers and train step follow the tutorial line for
line (Keras 3 spelling: an explicit keras.Input instead of input_shape=). Unconditional.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

NOISE_DIM = 100
BATCH_SIZE = 256
LEARNING_RATE = 1e-4


def make_generator_model() -> keras.Model:
    """The tutorial's generator: noise (N, 100) -> images (N, 28, 28, 1) in [-1, 1]."""
    model = keras.Sequential(name="tutorial_generator")
    model.add(keras.Input((NOISE_DIM,)))
    model.add(layers.Dense(7 * 7 * 256, use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Reshape((7, 7, 256)))
    model.add(layers.Conv2DTranspose(128, (5, 5), strides=(1, 1), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(64, (5, 5), strides=(2, 2), padding="same", use_bias=False))
    model.add(layers.BatchNormalization())
    model.add(layers.LeakyReLU())
    model.add(layers.Conv2DTranspose(1, (5, 5), strides=(2, 2), padding="same", use_bias=False, activation="tanh"))
    return model


def make_discriminator_model() -> keras.Model:
    """The tutorial's discriminator: images (N, 28, 28, 1) in [-1, 1] -> logits (N, 1)."""
    model = keras.Sequential(name="tutorial_discriminator")
    model.add(keras.Input((28, 28, 1)))
    model.add(layers.Conv2D(64, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Conv2D(128, (5, 5), strides=(2, 2), padding="same"))
    model.add(layers.LeakyReLU())
    model.add(layers.Dropout(0.3))
    model.add(layers.Flatten())
    model.add(layers.Dense(1))
    return model


def make_dataset(images_uint8: np.ndarray, *, batch_size: int = BATCH_SIZE) -> tf.data.Dataset:
    """The tutorial's pipeline: uint8 (N, 28, 28) -> batches (B, 28, 28, 1) float32 in [-1, 1], reshuffled."""
    train_images = images_uint8.reshape(-1, 28, 28, 1).astype("float32")
    train_images = (train_images - 127.5) / 127.5
    # drop_remainder keeps every batch at BATCH_SIZE (the tutorial's noise has a fixed batch too).
    return tf.data.Dataset.from_tensor_slices(train_images).shuffle(len(train_images)).batch(batch_size, drop_remainder=True)


class ReferenceGAN:
    """The tutorial's two networks, two Adam(1e-4) optimizers and its @tf.function train step."""

    def __init__(self, *, batch_size: int = BATCH_SIZE):
        self.batch_size = int(batch_size)
        self.generator = make_generator_model()
        self.discriminator = make_discriminator_model()
        self.cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
        self.generator_optimizer = keras.optimizers.Adam(LEARNING_RATE)
        self.discriminator_optimizer = keras.optimizers.Adam(LEARNING_RATE)
        self.train_step = tf.function(self._train_step)

    def discriminator_loss(self, real_output, fake_output):
        real_loss = self.cross_entropy(tf.ones_like(real_output), real_output)
        fake_loss = self.cross_entropy(tf.zeros_like(fake_output), fake_output)
        return real_loss + fake_loss

    def generator_loss(self, fake_output):
        return self.cross_entropy(tf.ones_like(fake_output), fake_output)

    def _train_step(self, images):
        """One tutorial step on images (B, 28, 28, 1) in [-1, 1] -> (gen_loss, disc_loss) scalars."""
        noise = tf.random.normal([self.batch_size, NOISE_DIM])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated_images = self.generator(noise, training=True)
            real_output = self.discriminator(images, training=True)
            fake_output = self.discriminator(generated_images, training=True)
            gen_loss = self.generator_loss(fake_output)
            disc_loss = self.discriminator_loss(real_output, fake_output)
        gradients_of_generator = gen_tape.gradient(gen_loss, self.generator.trainable_variables)
        gradients_of_discriminator = disc_tape.gradient(disc_loss, self.discriminator.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(gradients_of_generator, self.generator.trainable_variables))
        self.discriminator_optimizer.apply_gradients(
            zip(gradients_of_discriminator, self.discriminator.trainable_variables))
        return gen_loss, disc_loss
