"""Corrupted digits for measuring the out-of-distribution flag (broken digits the evaluator should doubt)."""
from __future__ import annotations

import numpy as np

KINDS = ("noise", "blobs", "scramble", "occlude", "half")


def blobs(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """(n, 28, 28) in [0, 1]: 3-5 soft round blobs each, like a generator pushed far off its latent shell."""
    ys, xs = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28), np.float32)
    for index in range(n):
        for _ in range(rng.integers(3, 6)):
            cy, cx, radius = rng.uniform(6, 22), rng.uniform(6, 22), rng.uniform(2, 4.5)
            out[index] = np.maximum(out[index], np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * radius ** 2)))
    return out


def corrupt(images: np.ndarray, kind: str, *, rng: np.random.Generator) -> np.ndarray:
    """(N, 28, 28) in [0, 1] -> corrupted copies: noise, blobs, scramble (quadrants shuffled), occlude, half (left half only)."""
    images = np.asarray(images, np.float32)
    if kind == "noise":
        return np.clip(images + rng.normal(0, 0.5, images.shape), 0, 1).astype(np.float32)
    if kind == "blobs":
        return blobs(len(images), rng=rng)
    if kind == "scramble":
        quads = [images[:, :14, :14], images[:, :14, 14:], images[:, 14:, :14], images[:, 14:, 14:]]
        order = rng.permutation(4)
        order = order if not np.array_equal(order, np.arange(4)) else np.array([3, 2, 1, 0])
        q = [quads[i] for i in order]
        return np.concatenate([np.concatenate(q[:2], axis=2), np.concatenate(q[2:], axis=2)], axis=1)
    if kind == "occlude":
        out = images.copy()
        for index in range(len(out)):
            top, left = rng.integers(4, 12, 2)
            out[index, top:top + 12, left:left + 12] = 0
        return out
    if kind == "half":
        out = images.copy()
        out[:, :, 14:] = 0
        return out
    raise ValueError(f"unknown corruption {kind!r}; one of {', '.join(KINDS)}")
