"""The GAN's math: networks, optimizers, the EMA generator and the compiled train step."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from aigc.engine.spec import RunSpec
from aigc.engine.models import build_discriminator, build_generator, discriminator_inputs, generator_inputs


def pick_strategy(cluster=None, *, collective_timeout: float | None = None) -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy for a cluster (TF_CONFIG), else MirroredStrategy over several GPUs
    (or several logical CPUs in tests), else the default strategy."""
    if cluster is not None:
        # TF_CONFIG is read by the strategy itself; it must be created before any other TensorFlow op.
        # The timeout bounds a collective stuck on a live but hung peer; dead peers are caught sooner by
        # the coordination service's heartbeats.
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout or None)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    cpus = tf.config.list_logical_devices("CPU")
    if not gpus and len(cpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in cpus])
    return tf.distribute.get_strategy()


def pick_precision(requested: str) -> str:
    """'auto' -> mixed_bfloat16 on a GPU or on a CPU with native bfloat16 (AVX512-BF16, AMX), else float32
    (emulated bfloat16 is slower than float32)."""
    from aigc.cpus import has_native_bf16

    if requested != "auto":
        return requested
    return "mixed_bfloat16" if tf.config.list_physical_devices("GPU") or has_native_bf16() else "float32"


class GAN:
    """Both networks, both optimizers, an EMA copy of the generator and a tf.function train step."""

    def __init__(self, spec: RunSpec, *, strategy: tf.distribute.Strategy | None = None):
        """The GAN of a run spec: its architecture (spec.model) and every hyperparameter come from the spec alone."""
        self.spec = spec
        self.config = spec.model
        self.strategy = strategy or tf.distribute.get_strategy()
        self.global_batch = spec.batch_size
        with self.strategy.scope():
            # The class loss's weight: a variable, so the schedule can fade it between calls of the traced step.
            self.class_loss = tf.Variable(spec.class_loss, trainable=False, dtype=tf.float32, name="class_loss")
            self.generator = build_generator(self.config)
            self.discriminator = build_discriminator(self.config)
            self.ema_generator = build_generator(self.config) if spec.ema_decay > 0 else None
            self.g_optimizer = keras.optimizers.Adam(spec.lr_g, beta_1=spec.beta_1)
            self.d_optimizer = keras.optimizers.Adam(spec.lr_d, beta_1=spec.beta_1)
            self.g_optimizer.build(self.generator.trainable_variables)
            self.d_optimizer.build(self.discriminator.trainable_variables)
        if self.ema_generator is not None:
            self.ema_generator.set_weights(self.generator.get_weights())
        self._step = tf.function(self._distributed_step, jit_compile=spec.jit, reduce_retracing=True)
        self._images = self._labels = self._fused = None

    @property
    def serving_generator(self) -> keras.Model:
        """The generator to sample from: the EMA copy when there is one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def checkpoint(self, **extra) -> tf.train.Checkpoint:
        """A tf.train.Checkpoint of everything that a resume needs (plus extra variables)."""
        parts = dict(generator=self.generator, discriminator=self.discriminator,
                     g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer, **extra)
        if self.ema_generator is not None:
            parts["ema_generator"] = self.ema_generator
        return tf.train.Checkpoint(**parts)

    def load_pretrained(self, generator: keras.Model, discriminator: keras.Model | None) -> None:
        """Start from shipped weights: generator (and EMA copy) and, when given, discriminator."""
        self.generator.set_weights(generator.get_weights())
        if self.ema_generator is not None:
            self.ema_generator.set_weights(generator.get_weights())
        if discriminator is not None:
            self.discriminator.set_weights(discriminator.get_weights())

    def attach_data(self, images_uint8: np.ndarray, labels: np.ndarray) -> None:
        """Keep the training set on the device as two tensors (uint8 pixels, int32 labels) for train_steps."""
        self._images = tf.constant(images_uint8)
        self._labels = tf.constant(np.asarray(labels, np.int32))
        if self.strategy.num_replicas_in_sync == 1:
            # Many steps per call: one trace, batches gathered inside the loop, one host sync per call.
            self._fused = tf.function(self._fused_steps, jit_compile=self.spec.jit,
                                      input_signature=[tf.TensorSpec([None, self.global_batch], tf.int32)])

    def train_steps(self, rows: np.ndarray) -> dict:
        """len(rows) steps on the attached data; rows int32 (K, global batch) of image indices -> mean metrics.

        With several replicas each trains on its contiguous slice of every row.
        """
        assert self._images is not None, "attach_data first"
        if self._fused is not None:
            return {k: float(v) for k, v in self._fused(tf.constant(rows, tf.int32)).items()}
        sums: dict = {}
        for row in rows:
            images, labels = self.strategy.experimental_distribute_values_from_function(
                lambda context: self._gather(self._replica_rows(row, context)))
            for key, value in self._step(images, labels).items():
                sums[key] = sums.get(key, 0.0) + float(value)
        return {k: v / len(rows) for k, v in sums.items()}

    def set_schedule(self, lr_g: float, lr_d: float, class_weight: float | None = None) -> None:
        """Both optimizers' learning rates (and the class loss's weight) from now on; the caller applies its
        schedule between calls (see RunSpec.learning_rates and RunSpec.class_weight)."""
        self.g_optimizer.learning_rate.assign(lr_g)
        self.d_optimizer.learning_rate.assign(lr_d)
        if class_weight is not None and self.config.class_head:
            self.class_loss.assign(class_weight)

    def follow_schedule(self, epochs_done: float) -> None:
        """The spec's schedule after epochs_done epochs (its constant values when it has none)."""
        self.set_schedule(*self.spec.learning_rates(epochs_done), class_weight=self.spec.class_weight(epochs_done))

    def _replica_rows(self, row: np.ndarray, context) -> np.ndarray:
        per_replica = len(row) // context.num_replicas_in_sync
        start = context.replica_id_in_sync_group * per_replica
        return row[start:start + per_replica]

    def _gather(self, indices):
        images = tf.cast(tf.gather(self._images, indices), tf.float32)[..., None] / 127.5 - 1.0
        return images, tf.gather(self._labels, indices)

    def _fused_steps(self, rows):
        sums = {key: tf.constant(0.0) for key in ("d_loss", "g_loss", "d_real", "d_fake")}
        for index in tf.range(tf.shape(rows)[0]):
            values = self._distributed_step(*self._gather(rows[index]))
            sums = {key: sums[key] + tf.cast(values[key], tf.float32) for key in sums}
        count = tf.cast(tf.shape(rows)[0], tf.float32)
        return {key: value / count for key, value in sums.items()}

    def _distributed_step(self, real_images, labels):
        per_replica = self.strategy.run(self._replica_step, args=(real_images, labels))
        totals = {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}
        if self.ema_generator is not None:
            # Polyak averaging of the generator: a smoother, better sampler at no training cost.
            # Warm-up (1 + t) / (N + t) keeps the average from holding on to the random start.
            steps = tf.cast(self.g_optimizer.iterations, tf.float32)
            decay = tf.minimum(self.spec.ema_decay, (1.0 + steps) / (self.spec.ema_warmup + steps))
            for ema_weight, weight in zip(self.ema_generator.weights, self.generator.weights):
                ema_weight.assign(decay * ema_weight + (1.0 - decay) * weight)
        return totals

    def _replica_step(self, real_images, labels):
        batch = tf.shape(real_images)[0]
        random_latent_vectors = self._latent_slice(batch)
        # Fakes are asked for the same digits as the real batch: a balanced class mix.
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            if self.spec.mode_seeking:
                fake_images, twins, twin_latents = self._with_twins(random_latent_vectors, labels, batch)
            else:
                fake_images = self.generator(generator_inputs(self.config, random_latent_vectors, labels), training=True)
            seen_real, seen_fake = self._augment(real_images, 1), self._augment(fake_images, 2)
            real_logits = self.discriminator(discriminator_inputs(self.config, seen_real, labels), training=True)
            fake_logits = self.discriminator(discriminator_inputs(self.config, seen_fake, labels), training=True)
            if self.config.class_head:
                (real_logits, real_classes), (fake_logits, fake_classes) = real_logits, fake_logits
            d_per_example, g_per_example = self._losses(real_logits, fake_logits)
            if self.config.class_head:
                # D learns to name real digits only (fakes would teach it their flaws); G, to have fakes named as asked.
                named = tf.nn.sparse_softmax_cross_entropy_with_logits
                d_per_example += self.class_loss * named(labels=labels, logits=tf.cast(real_classes, tf.float32))
                g_per_example += self.class_loss * named(labels=labels, logits=tf.cast(fake_classes, tf.float32))
            d_loss = tf.nn.compute_average_loss(d_per_example, global_batch_size=self.global_batch)
            if self.spec.r1_gamma:
                every = self.spec.r1_every
                due = tf.equal(self.g_optimizer.iterations % every, 0)
                d_loss += tf.cond(due, lambda: every * self._r1_penalty(real_images, labels), lambda: tf.constant(0.0))
            g_loss = tf.nn.compute_average_loss(g_per_example, global_batch_size=self.global_batch)
            if self.spec.mode_seeking:
                pairs = tf.shape(twins)[0]
                g_loss += self.spec.mode_seeking * self._mode_seeking_loss(
                    fake_images[:pairs], twins, random_latent_vectors[:pairs], twin_latents)
        d_grads = d_tape.gradient(d_loss, self.discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_loss, self.generator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))
        mean = lambda t: tf.reduce_sum(tf.cast(t, tf.float32)) / self.global_batch  # noqa: E731
        return {"d_loss": d_loss, "g_loss": g_loss,
                "d_real": mean(tf.sigmoid(real_logits)), "d_fake": mean(tf.sigmoid(fake_logits))}

    MODE_SEEKING_PAIRS = 8  # per replica: G draws 8 more images; at batch 32, 0.86-1.0x the img/s (3 rounds, AVX2)

    def _with_twins(self, latents, labels, batch):
        """(fakes, twins, twin latents): the batch's first pairs again from fresh noise, same labels, in one pass."""
        pairs = tf.minimum(batch, self.MODE_SEEKING_PAIRS)
        twin_latents = self._latent_slice(pairs, stream=1)
        both = self.generator(generator_inputs(self.config, tf.concat([latents, twin_latents], 0),
                                               tf.concat([labels, labels[:pairs]], 0)), training=True)
        return both[:batch], both[batch:], twin_latents

    def _mode_seeking_loss(self, images, twins, latents, twin_latents):
        """This replica's share of 1 / (eps + mean over pairs of |G(z1, y) - G(z2, y)|_1 / |z1 - z2|_1), Mao et
        al. 2019 (MSGAN): small when two noises give two different digits for the same label, large when G
        collapses them to one (the styles that recall counts as missing)."""
        image_gap = tf.reduce_mean(tf.abs(tf.cast(images, tf.float32) - tf.cast(twins, tf.float32)), axis=[1, 2, 3])
        latent_gap = tf.reduce_mean(tf.abs(latents - twin_latents), axis=1)
        ratio = tf.reduce_mean(image_gap / latent_gap)
        return 1.0 / (ratio + 1e-5) / self.strategy.num_replicas_in_sync

    def _r1_penalty(self, real_images, labels):
        """This replica's share of gamma/2 * E ||grad_x D(x)||^2 over real images (Mescheder et al. 2018), estimated
        on the batch's first r1_samples. It keeps D flat at the data, so G is not pushed past it: without it, D's
        slope there grew 8x from epoch 4 to epoch 11 of the recipe, and FDD rose."""
        count = tf.minimum(tf.shape(real_images)[0], self.spec.r1_samples)
        images, labels = real_images[:count], labels[:count]
        with tf.GradientTape() as tape:
            tape.watch(images)
            logits = self.discriminator(discriminator_inputs(self.config, images, labels), training=True)
            if self.config.class_head:
                logits = logits[0]
            total = tf.reduce_sum(tf.cast(logits, tf.float32))
        squared = tf.reduce_sum(tf.square(tf.cast(tape.gradient(total, images), tf.float32)), axis=[1, 2, 3])
        seen = tf.cast(count * self.strategy.num_replicas_in_sync, tf.float32)
        return 0.5 * self.spec.r1_gamma * tf.reduce_sum(squared) / seen

    def _augment(self, images, stream: int):
        """DiffAugment's translation (Zhao et al. 2020) when spec.augment_shift: each image shifted by up to that
        many pixels each way, the border filled with the background (-1), by gathers that gradients flow through.
        The shifts are a function of (seed, step, stream, replica): a resumed run draws what it would have."""
        shift = self.spec.augment_shift
        if not shift:
            return images
        batch, size = tf.shape(images)[0], images.shape[1]
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int64)
        step = tf.cast(self.g_optimizer.iterations, tf.int64)
        key = tf.stack([tf.constant(self.spec.seed, tf.int64), step * 1024 + replica * 8 + stream])
        offsets = tf.random.stateless_uniform([2, batch, 1], seed=key, minval=0, maxval=2 * shift + 1, dtype=tf.int32)
        padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]], constant_values=-1.0)
        window = tf.range(size)[None, :]
        rows = tf.gather(padded, offsets[0] + window, axis=1, batch_dims=1)
        return tf.gather(rows, offsets[1] + window, axis=2, batch_dims=1)

    def _latent_slice(self, batch, stream: int = 0):
        """This replica's rows of the step's global latent batch (B_global, latent_dim), N(0, 1).

        The noise is a function of (seed, step, stream) only, so 1 process or N workers x M replicas draw the
        same vectors for the same images, and a resumed run draws what the uninterrupted one would have.
        Stream 0 is the batch's noise; stream 1, the mode-seeking twins' (seeds stay below 2**31).
        """
        step = tf.cast(self.g_optimizer.iterations, tf.int64)
        replica = tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.int32)
        rows = tf.maximum(self.global_batch, (replica + 1) * batch)  # a caller's oversized batch still gets noise
        key = tf.constant(self.spec.seed + stream * 2**31, tf.int64)
        everyone = tf.random.stateless_normal(tf.stack([rows, self.config.latent_dim]), seed=tf.stack([key, step]))
        return tf.slice(everyone, tf.stack([replica * batch, 0]), tf.stack([batch, self.config.latent_dim]))

    def _losses(self, real_logits, fake_logits):
        real_logits = tf.reshape(tf.cast(real_logits, tf.float32), [-1])
        fake_logits = tf.reshape(tf.cast(fake_logits, tf.float32), [-1])
        if self.spec.loss == "hinge":
            d_loss = tf.nn.relu(1.0 - real_logits) + tf.nn.relu(1.0 + fake_logits)
            return d_loss, -fake_logits
        # Binary cross-entropy from logits; the generator uses the non-saturating form.
        real_targets = tf.fill(tf.shape(real_logits), 1.0 - self.spec.label_smoothing)
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        d_loss = bce(labels=real_targets, logits=real_logits) + bce(labels=tf.zeros_like(fake_logits), logits=fake_logits)
        return d_loss, bce(labels=tf.ones_like(fake_logits), logits=fake_logits)
