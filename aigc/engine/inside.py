"""A look inside the GAN at each epoch's end, for the Train page (no Streamlit): the discriminator's score D(x) of
each tile of the fixed-seed sample grid, and a 2-D map of digits, real and generated, in the evaluator's features.

The map's axes are the two principal components of the evaluator's features of the MNIST test set, taken from the
evaluator's reference statistics (their mean and covariance are the test set's: quality/evaluator_train.py), so
every run and epoch is drawn in the same plane and no dataset is needed to fit it. The real digits shown on it are
test digits of the run's own data. One small JSON per epoch: <run>/inside/epoch_NNNN.json, written atomically.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigc.runs.files import atomic_write_json

FORMAT = 1
REAL_PER_DIGIT = 30  # real test digits per digit on the map (300 in all)
EXTRA_FAKES = 200  # generated digits on the map beside the grid's 100 tiles
EXTRA_SEED = 4321  # their latents: the same every epoch, so the cloud's motion is the generator's, not the draw's
D_REAL_PER_DIGIT = 10  # real digits scored by D at each epoch, for the page's "real digits score ..." reference


@dataclass(frozen=True)
class Basis:
    """A 2-D PCA plane of the evaluator's features: mean (D,), axes (2, D) orthonormal, explained (2,) variance shares."""

    mean: np.ndarray
    axes: np.ndarray
    explained: np.ndarray

    def project(self, features: np.ndarray) -> np.ndarray:
        """(N, 2) coordinates of features (N, D)."""
        return (np.asarray(features, np.float64) - self.mean) @ self.axes.T


def basis_from_stats(mean: np.ndarray, covariance: np.ndarray) -> Basis:
    """The top two principal axes of a (D,) mean and (D, D) covariance; each axis signed so its largest entry is > 0."""
    covariance = np.asarray(covariance, np.float64)
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    order = np.argsort(values)[::-1][:2]
    axes = vectors[:, order].T
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]  # eigh's sign is arbitrary: fix it, for stable pictures
    total = max(float(np.clip(values, 0, None).sum()), 1e-12)
    return Basis(mean=np.asarray(mean, np.float64), axes=axes, explained=np.clip(values[order], 0, None) / total)


def pca_basis(features: np.ndarray) -> Basis:
    """The PCA plane fitted on features (N, D) of real digits (N >= 2)."""
    features = np.asarray(features, np.float64)
    assert len(features) >= 2, f"PCA needs at least 2 digits, got {len(features)}"
    return basis_from_stats(features.mean(axis=0), np.cov(features, rowvar=False))


def real_digits(data: str | None, *, per_digit: int = REAL_PER_DIGIT) -> tuple[np.ndarray, np.ndarray] | None:
    """(images uint8 (N, 28, 28), labels (N,)): up to per_digit test digits of each digit, the same every call; None
    when the run's data cannot be read."""
    from aigc.engine.data import resolve_path

    path = resolve_path(data)
    try:
        stamp = Path(path).stat().st_mtime_ns if path else 0
        return _real_digits(str(path) if path else None, stamp, per_digit)
    except Exception:  # noqa: BLE001  (the map goes without its real cloud; training goes on)
        return None


@functools.lru_cache(maxsize=1)  # the trainer's one data file, read once per process
def _real_digits(path: str | None, _stamp: int, per_digit: int) -> tuple[np.ndarray, np.ndarray] | None:
    if path:
        with np.load(path, allow_pickle=False) as archive:  # only the test members are read
            images, labels = archive["x_test"], archive["y_test"]
    else:
        from aigc.engine.data import load_mnist

        _x, _y, images, labels = load_mnist(None)
    labels = np.asarray(labels, np.int64).reshape(-1)
    if len(images) == 0 or np.asarray(images).shape[1:] != (28, 28):
        return None
    rng = np.random.default_rng(0)
    chosen = np.concatenate([rng.permutation(np.flatnonzero(labels == d))[:per_digit] for d in range(10)])
    chosen = np.sort(chosen)
    return np.asarray(images[chosen], np.uint8), labels[chosen]


def grid_latents(latent_dim: int, *, seed: int, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(z (10 * columns, latent_dim) float32, labels (10 * columns,) int32): the fixed sample grid's, row = digit."""
    z = np.random.default_rng(seed).standard_normal((10 * columns, latent_dim)).astype(np.float32)
    return z, np.repeat(np.arange(10, dtype=np.int32), columns)


def d_scores(discriminator, config, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """D(x) in (0, 1) for images (N, 28, 28) in [0, 1] and labels (N,): the probability D gives 'real'."""
    from aigc.engine.models import discriminator_inputs

    pixels = (np.asarray(images, np.float32) * 2.0 - 1.0)[..., None]  # the model's [-1, 1], one channel
    logits = discriminator(discriminator_inputs(config, pixels, np.asarray(labels, np.int32)), training=False)
    if config.class_head:
        logits = logits[0]
    logits = np.asarray(logits, np.float64).reshape(-1)
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))


def look_inside(generator, discriminator, config, *, seed: int, columns: int, real=None, evaluator=None) -> dict:
    """The epoch's look inside, as JSON-able lists: the grid tiles' D(x) (and real digits' mean D(x)); with an
    evaluator, the map: real digits (grey on the page) and generated ones (the tiles first) in its PCA plane."""
    from aigc.engine.sampling import run_generator

    conditional = bool(config.conditional)
    tile_z, tile_labels = grid_latents(config.latent_dim, seed=seed, columns=columns)
    extra_z = np.random.default_rng(EXTRA_SEED).standard_normal((EXTRA_FAKES, config.latent_dim)).astype(np.float32)
    extra_labels = (np.arange(EXTRA_FAKES) % 10).astype(np.int32)
    z, asked = np.concatenate([tile_z, extra_z]), np.concatenate([tile_labels, extra_labels])
    fakes = run_generator(generator, z, asked if conditional else None)
    tiles = len(tile_z)
    result = {"format": FORMAT, "tiles": {"columns": columns, "digits": tile_labels.tolist(),
                                          "d": _rounded(d_scores(discriminator, config, fakes[:tiles], tile_labels), 4)},
              "d_real_mean": None, "map": None}
    if real is not None:
        scored = np.concatenate([np.flatnonzero(real[1] == d)[:D_REAL_PER_DIGIT] for d in range(10)])
        d_real = d_scores(discriminator, config, real[0][scored].astype(np.float32) / 255.0, real[1][scored])
        result["d_real_mean"] = round(float(d_real.mean()), 4)
    if evaluator is not None:
        result["map"] = feature_map(evaluator, fakes, asked if conditional else None, real)
    return result


def feature_map(evaluator, fakes: np.ndarray, asked: np.ndarray | None, real=None) -> dict:
    """Generated digits (N, 28, 28) in [0, 1] and real ones (uint8, labels) in the evaluator's PCA plane; an
    unconditional generator's digits are colored by what the evaluator reads."""
    from aigc.quality import metrics

    basis = basis_from_stats(evaluator.mu, evaluator.sigma)  # ~1 ms for 128-d features
    features, probs = metrics.evaluator_outputs(fakes, evaluator=evaluator)
    points = basis.project(features)
    digits = asked if asked is not None else probs.argmax(axis=1)
    fake = {"x": _rounded(points[:, 0], 3), "y": _rounded(points[:, 1], 3), "digit": np.asarray(digits).tolist(),
            "colored_by": "asked" if asked is not None else "read"}
    shown = None
    if real is not None:
        real_points = basis.project(metrics.evaluator_outputs(real[0], evaluator=evaluator)[0])
        shown = {"x": _rounded(real_points[:, 0], 3), "y": _rounded(real_points[:, 1], 3),
                 "digit": np.asarray(real[1]).tolist()}
    return {"explained": _rounded(basis.explained, 4), "fake": fake, "real": shown}


def _rounded(values, digits: int) -> list[float]:
    return [round(float(v), digits) for v in np.asarray(values).reshape(-1)]


def save_epoch(paths, epoch: int, gan, *, seed: int, columns: int, chief: bool = True, log=print) -> None:
    """Write <run>/inside/epoch_NNNN.json for the GAN at this epoch's end (the chief only); a failure is logged,
    never raised: a look inside must not end the training."""
    from aigc.quality import metrics

    if not chief:
        return
    try:
        evaluator = metrics.load_evaluator() if metrics.evaluator_available() else None
        found = look_inside(gan.serving_generator, gan.discriminator, gan.config, seed=seed, columns=columns,
                            real=real_digits(gan.spec.data), evaluator=evaluator)
        atomic_write_json(paths.inside_path(epoch), dict(found, epoch=int(epoch)))
    except Exception as error:  # noqa: BLE001  (the epoch's checkpoint, samples and evaluation matter more)
        log(f"inside view skipped: {type(error).__name__}: {error}")
