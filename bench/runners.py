"""The two contenders' training, as run(steps) callables: the project's trainer and the TF DCGAN tutorial.

The project's side is the trainer's own step order (aigc.engine.epoch_loop.Steps: each epoch's shuffled batches,
chunks of steps per call on device-resident data, the spec's schedule), so the benchmark times the trainer itself.
"""
from __future__ import annotations


def default_gan(spec, *, precision: str = "float32"):
    """aigc.engine.gan.GAN of `spec`, built under the Keras precision policy `precision` (put back afterwards)."""
    import keras

    from aigc.engine.gan import GAN

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(precision)
    try:
        return GAN(spec)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def default_runner(x, y, *, batch: int, precision: str = "float32", jit: bool = False, seed: int | None = None,
                   spec=None):
    """(gan, run(steps)): `spec` (default: the dcgan preset's) at this batch and jit (and seed, when given), trained
    as the trainer trains it."""
    from aigc.engine.epoch_loop import Steps
    from aigc.engine.spec import RunSpec

    spec = spec or RunSpec.resolve(preset="dcgan")
    spec = spec.replace(batch_size=batch, jit=jit, seed=spec.seed if seed is None else seed)
    gan = default_gan(spec, precision=precision)
    gan.attach_data(x, y)
    return gan, Steps(gan, len(x)).runner()


def reference_runner(x, *, batch: int):
    """(reference GAN, run(steps)): the tutorial's pipeline and train step."""
    from bench.reference import ReferenceGAN, make_dataset

    reference = ReferenceGAN(batch_size=batch)
    batches = iter(make_dataset(x, batch_size=batch).repeat())

    def run(steps: int) -> None:
        for _ in range(steps):
            gen_loss, _disc_loss = reference.train_step(next(batches))
            float(gen_loss)
    return reference, run
