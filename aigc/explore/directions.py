"""Named style directions in the latent space (ink, slant, width), fit by regression on generated digits.

Each property is measured on many generated digits; a least-squares fit of property ~ z + digit
gives a direction in z (the digit one-hot soaks up per-digit differences); Gram-Schmidt then makes
the directions orthonormal, in this order, so moving one slider moves the others' projections by 0.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from aigc.engine.sampling import latents, run_generator
from aigc.runs.files import atomic_write_npz

NAMES = ("ink", "slant", "width")
LABELS = {"ink": "Stroke thickness (ink)", "slant": "Slant", "width": "Width"}
FIT_SAMPLES = 3000
SLIDER_MIN, SLIDER_MAX = -2.0, 2.0  # in latent standard deviations along each unit direction
SUFFIX = "_directions.npz"


@dataclass(frozen=True)
class Directions:
    """Unit, orthogonal latent directions (k, D) float32 for NAMES, and each property's change per unit step (k,)."""

    vectors: np.ndarray
    slopes: np.ndarray
    names: tuple = NAMES


def properties(images: np.ndarray) -> np.ndarray:
    """(N, 3) float64 [ink, slant, width] of (N, 28, 28) images in [0, 1].

    ink: mean intensity (thicker strokes, more ink); slant: dx/dy of the ink's principal axis
    (positive leans right); width: the ink's horizontal standard deviation in pixels.
    """
    images = np.asarray(images, np.float64)
    mass = images.sum(axis=(1, 2)) + 1e-6
    ys, xs = np.mgrid[0:28, 0:28].astype(np.float64)
    cx = (images * xs).sum(axis=(1, 2)) / mass
    cy = (images * ys).sum(axis=(1, 2)) / mass
    dx, dy = xs[None] - cx[:, None, None], ys[None] - cy[:, None, None]
    var_x = (images * dx ** 2).sum(axis=(1, 2)) / mass
    var_y = (images * dy ** 2).sum(axis=(1, 2)) / mass + 1e-6
    cov = (images * dx * dy).sum(axis=(1, 2)) / mass
    slant = -cov / var_y  # image y grows downward: a right lean has x falling as y grows
    return np.stack([images.mean(axis=(1, 2)), slant, np.sqrt(var_x)], axis=1)


def orthonormalize(vectors: np.ndarray) -> np.ndarray:
    """Gram-Schmidt on rows (k, D) in order -> orthonormal rows float64 (the first keeps its direction)."""
    basis = []
    for vector in np.asarray(vectors, np.float64):
        for other in basis:
            vector = vector - (vector @ other) * other
        basis.append(vector / (np.linalg.norm(vector) + 1e-12))
    return np.stack(basis)


def fit_directions(generator, latent_dim: int, *, samples: int = FIT_SAMPLES, seed: int = 0) -> Directions:
    """Fit NAMES' directions on `samples` generated digits (seeded): regression on [z, one-hot digit], orthonormalized."""
    z = latents(samples, latent_dim, seed=seed)
    labels = np.random.default_rng(seed + 1).integers(0, 10, samples).astype(np.int32)
    measured = properties(run_generator(generator, z, labels))
    design = np.concatenate([z, np.eye(10)[labels]], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, measured, rcond=None)
    vectors = orthonormalize(coefficients[:latent_dim].T)
    slopes = np.array([np.polyfit(z @ v, measured[:, k], 1)[0] for k, v in enumerate(vectors)])
    return Directions(vectors.astype(np.float32), slopes)


def shift(directions: Directions, values: dict) -> np.ndarray:
    """(D,) float32 latent offset: sum of value * direction for each named value, clipped to the slider range."""
    offset = np.zeros(directions.vectors.shape[1], np.float32)
    for name, vector in zip(directions.names, directions.vectors):
        value = float(np.clip(np.nan_to_num(float(values.get(name, 0.0))), SLIDER_MIN, SLIDER_MAX))
        offset += value * vector
    return offset


def file_digest(path: str | Path) -> str:
    """sha256 hex of a file: ties shipped directions to the exact generator weights."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_directions(path: str | Path, directions: Directions, *, generator_sha256: str) -> None:
    """Write directions beside their generator as a plain .npz, atomically."""
    atomic_write_npz(Path(path), vectors=directions.vectors, slopes=directions.slopes,
                     names=np.array(directions.names),
                     info=np.array(json.dumps({"generator_sha256": generator_sha256, "samples": FIT_SAMPLES})))


def load_shipped(generator_path: str | Path) -> Directions | None:
    """Directions shipped beside this generator file when they were fit on these exact weights, else None."""
    generator_path = Path(generator_path)
    path = generator_path.with_name(generator_path.stem + SUFFIX)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if json.loads(str(npz["info"])).get("generator_sha256") != file_digest(generator_path):
                return None
            return Directions(npz["vectors"].astype(np.float32), npz["slopes"].astype(np.float64),
                              tuple(str(n) for n in npz["names"]))
    except (OSError, KeyError, ValueError):
        return None


def directions_for(model_of: Callable[[], object], latent_dim: int, path: str | Path | None = None) -> Directions:
    """The generator's directions: shipped ones when they match its file, else fit (caches.DIRECTIONS keeps them).

    model_of() gives the generator; it is only called to fit (shipped directions need no model loaded).
    """
    return (load_shipped(path) if path else None) or fit_directions(model_of(), latent_dim)
