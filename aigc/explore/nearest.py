"""Is it copying? Each generated digit's nearest MNIST training image, by L2 distance in pixels."""
from __future__ import annotations

import numpy as np

NEAREST_CHUNK = 10_000


def squared_norms(x_train: np.ndarray) -> np.ndarray:
    """(N,) float32 squared L2 norms of (N, 784) uint8 training images scaled to [0, 1]."""
    scaled = x_train.astype(np.float32) / 255
    return np.einsum("ij,ij->i", scaled, scaled)


def nearest_training(images: np.ndarray, x_train: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices (N,), L2 distances (N,)) of the closest training image to each (N, 28, 28) image in [0, 1]."""
    queries = images.reshape(len(images), -1).astype(np.float32)
    best_index = np.zeros(len(queries), np.int64)
    best = np.full(len(queries), np.inf, np.float32)
    query_norms = np.einsum("ij,ij->i", queries, queries)
    for start in range(0, len(x_train), NEAREST_CHUNK):
        chunk = x_train[start:start + NEAREST_CHUNK].astype(np.float32) / 255
        distances = query_norms[:, None] - 2 * queries @ chunk.T + norms[None, start:start + len(chunk)]
        index = distances.argmin(axis=1)
        value = distances[np.arange(len(queries)), index]
        better = value < best
        best[better], best_index[better] = value[better], index[better] + start
    return best_index, np.sqrt(np.maximum(best, 0))
