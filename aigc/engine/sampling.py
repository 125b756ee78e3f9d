"""Generation without Streamlit: sample digits, lay out grids, interpolate (load a file with engine.checkpoints)."""
from __future__ import annotations

import weakref

import numpy as np
from PIL import Image

from aigc.engine.spec import ModelConfig

MAX_SAMPLES = 10_000
GRID_PAD = 2
# generator -> its compiled serving function; weak keys, so a reloaded checkpoint frees the old one.
_SERVING: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def tune_for_a_server() -> None:
    """TensorFlow settings for a web server process that calls small models once per request.

    Streamlit calls keras.backend.clear_session() after every script run, which empties TensorFlow's
    kernel cache: the next request instantiates each model's function again, and grappler re-optimizes
    its graph each time. Measured on 2 cores (shipped generator, 16 digits plus the evaluator's
    reading, 15 requests): 92 ms of CPU per request after a clear with grappler, 48 ms without; 20 vs
    23 ms when nothing was cleared; an inversion (the Draw page) 2.4 s either way. So the server
    process turns grappler's meta-optimizer off. The trainer runs in its own process and keeps it.
    """
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


def latents(n: int, latent_dim: int, *, seed: int, truncation: float = 1.0) -> np.ndarray:
    """(n, latent_dim) float32 standard normals for a seed, scaled by truncation (0, 2]."""
    assert 0 < truncation <= 2.0, f"truncation must be in (0, 2], got {truncation}"
    return np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32) * truncation


def digit_labels(n: int, digit: int | None, *, seed: int) -> np.ndarray:
    """(n,) int32 labels: all `digit`, or a seeded mix of 0..9 when digit is None."""
    if digit is None:
        return np.random.default_rng(seed + 1_000_003).integers(0, 10, n).astype(np.int32)
    assert 0 <= int(digit) <= 9, f"digit must be 0..9 or None, got {digit}"
    return np.full(n, int(digit), np.int32)


def generate(generator, n: int, digit: int | None = None, *, seed: int = 0, truncation: float = 1.0,
             config: ModelConfig | None = None):
    """Return (images (n, 28, 28) float32 in [0, 1], labels (n,) int32); same seed -> same images."""
    assert 1 <= n <= MAX_SAMPLES, f"n must be between 1 and {MAX_SAMPLES}, got {n}"
    conditional = config.conditional if config else len(generator.inputs) > 1
    latent_dim = config.latent_dim if config else _latent_dim(generator)
    z = latents(n, latent_dim, seed=seed, truncation=truncation)
    labels = digit_labels(n, digit, seed=seed)
    return run_generator(generator, z, labels if conditional else None), labels


def run_generator(generator, z: np.ndarray, labels: np.ndarray | None, *, batch_size: int = 1000) -> np.ndarray:
    """Call the model (not predict) in batches: z (N, D), labels (N,) or None -> (N, 28, 28) in [0, 1]."""
    z = np.asarray(z, np.float32)
    serve = serving_function(generator, conditional=labels is not None, latent_dim=z.shape[-1])
    labels = None if labels is None else np.asarray(labels, np.int32)
    outputs = []
    for start in range(0, len(z), batch_size):
        inputs = [z[start:start + batch_size]]
        if labels is not None:
            inputs.append(labels[start:start + batch_size])
        outputs.append(serve(*inputs).numpy())
    images = np.concatenate(outputs)[..., 0]
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


def serving_function(generator, *, conditional: bool, latent_dim: int):
    """The generator as a tf.function traced once (batch dimension left open), cached per model.

    Calling the Keras model eagerly costs ~3x more per request; predict() ~10x (see docs/performance.md).
    """
    cached = _SERVING.get(generator)
    if cached is not None and cached[0] == (conditional, latent_dim):
        return cached[1]
    import tensorflow as tf

    model_ref = weakref.ref(generator)  # the cache must not keep the model alive
    z_spec = tf.TensorSpec([None, latent_dim], tf.float32, name="z")
    if conditional:
        signature = [z_spec, tf.TensorSpec([None], tf.int32, name="label")]
        function = tf.function(lambda z, label: model_ref()([z, label], training=False), input_signature=signature)
    else:
        function = tf.function(lambda z: model_ref()(z, training=False), input_signature=[z_spec])
    _SERVING[generator] = ((conditional, latent_dim), function)
    return function


def _latent_dim(generator) -> int:
    """For a caller without the file's ModelConfig only; everyone else uses config.latent_dim."""
    return int(generator.inputs[0].shape[-1])  # .inputs also works for a Sequential model


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 0..255."""
    return np.clip(np.rint(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, ncol: int = 10, *, scale: int = 1, pad: int = GRID_PAD) -> Image.Image:
    """Lay (N, 28, 28) images in [0, 1] out as a grayscale PIL image, ncol per row, upscaled crisply."""
    images = to_uint8(images)
    n = len(images)
    assert n > 0 and ncol > 0, "grid needs at least one image and one column"
    ncol = min(ncol, n)
    nrow = -(-n // ncol)
    height, width = images.shape[1:3]
    canvas = np.zeros((nrow * (height + pad) + pad, ncol * (width + pad) + pad), np.uint8)
    for index, image in enumerate(images):
        row, col = divmod(index, ncol)
        top, left = pad + row * (height + pad), pad + col * (width + pad)
        canvas[top:top + height, left:left + width] = image
    picture = Image.fromarray(canvas, mode="L")
    if scale > 1:
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    return picture


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation between latent vectors a and b at t in [0, 1]."""
    a_norm, b_norm = np.linalg.norm(a), np.linalg.norm(b)
    cos = np.clip(np.dot(a / a_norm, b / b_norm), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolate(generator, *, seed_a: int, seed_b: int, digit_a: int | None = None, digit_b: int | None = None,
                steps: int = 10, truncation: float = 1.0, config: ModelConfig | None = None) -> np.ndarray:
    """(steps, 28, 28) frames in [0, 1] walking from (seed_a, digit_a) to (seed_b, digit_b).

    Latents move by slerp; for a conditional generator the label embedding is blended
    linearly by feeding both endpoints' frames through the shared latent path.
    """
    assert 2 <= steps <= 200, f"steps must be between 2 and 200, got {steps}"
    conditional = config.conditional if config else len(generator.inputs) > 1
    latent_dim = config.latent_dim if config else _latent_dim(generator)
    z_a = latents(1, latent_dim, seed=seed_a, truncation=truncation)[0]
    z_b = latents(1, latent_dim, seed=seed_b, truncation=truncation)[0]
    ts = np.linspace(0.0, 1.0, steps)
    z = np.stack([slerp(z_a, z_b, t) for t in ts]).astype(np.float32)
    if not conditional:
        return run_generator(generator, z, None)
    label_a = digit_labels(1, digit_a, seed=seed_a)[0]
    label_b = digit_labels(1, digit_b, seed=seed_b)[0]
    if label_a == label_b:
        return run_generator(generator, z, np.full(steps, label_a, np.int32))
    # Different digits: blend the two conditioned images (labels are discrete inputs).
    from_a = run_generator(generator, z, np.full(steps, label_a, np.int32))
    from_b = run_generator(generator, z, np.full(steps, label_b, np.int32))
    weights = ts[:, None, None].astype(np.float32)
    return (1 - weights) * from_a + weights * from_b


def gif_bytes(frames: np.ndarray, *, scale: int = 4, duration_ms: int = 120) -> bytes:
    """An animated GIF (bytes) of (T, 28, 28) frames in [0, 1], ping-ponging back to the start."""
    import io

    pictures = [grid(frame[None], 1, scale=scale, pad=0) for frame in frames]
    pictures = pictures + pictures[-2:0:-1]
    buffer = io.BytesIO()
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=duration_ms, loop=0)
    return buffer.getvalue()
