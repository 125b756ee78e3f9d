"""Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models"), on evaluator features.

Each set's manifold is the union of balls around its points, a ball's radius being the distance to the point's
k-th nearest neighbour within its own set (k = 3). Precision = share of generated points inside the real manifold
(are the samples realistic?); recall = share of real points inside the generated manifold (is every real style
produced?). Distances are computed in row chunks, so memory stays bounded: 10,000 x 10,000 points take a few
64 MB blocks, never the whole matrix.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K = 3  # the paper's choice: k = 3 nearest neighbours
BLOCK_FLOATS = 1 << 24  # one distance block: at most 16M float32 (64 MB)
SUBSET_SEED = 0  # which real points a smaller generated set is compared with (fixed: figures stay comparable)


@dataclass(frozen=True)
class PrecisionRecall:
    """Precision and recall of one comparison, with which points fell inside the other set's manifold."""

    precision: float  # share of generated points inside the real manifold, 0..1
    recall: float  # share of real points inside the generated manifold, 0..1
    realistic: np.ndarray  # (N_generated,) bool: this generated point lies in some real ball
    covered: np.ndarray  # (N_real,) bool: this real point lies in some generated ball
    k: int


def _prepared(features, centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centred float32 features (N, D), squared norms (N,)): centring keeps float32's |a|^2 + |b|^2 - 2ab accurate."""
    points = np.asarray(features, np.float64) - centre
    points = points.astype(np.float32)
    return points, np.einsum("nd,nd->n", points, points)


def _rows_per_block(columns: int) -> int:
    return max(1, BLOCK_FLOATS // max(columns, 1))


def _squared_distances(rows: np.ndarray, row_norms: np.ndarray, columns: np.ndarray, column_norms: np.ndarray,
                       out: np.ndarray) -> np.ndarray:
    """(R, C) squared Euclidean distances into out[:R], float32, clipped at 0 (rounding can make them slightly
    negative). In place: one reused block instead of four fresh 64 MB temporaries."""
    block = np.matmul(rows, columns.T, out=out[:len(rows)])
    block *= -2.0
    block += row_norms[:, None]
    block += column_norms[None, :]
    return np.maximum(block, 0.0, out=block)


def _block(rows: int, columns: int) -> np.ndarray:
    return np.empty((min(rows, _rows_per_block(columns)), columns), np.float32)


def squared_knn_radii(features, *, k: int = K, centre: np.ndarray | None = None) -> np.ndarray:
    """(N,) float32 squared distance of each point (N, D) to its k-th nearest neighbour in the set, itself excluded."""
    centre = np.asarray(features, np.float64).mean(axis=0) if centre is None else centre
    points, norms = _prepared(features, centre)
    n = len(points)
    assert 0 < k < n, f"k-nearest-neighbour radii need more than k = {k} points, got {n}"
    radii = np.empty(n, np.float32)
    out = _block(n, n)
    for start in range(0, n, len(out)):
        stop = min(start + len(out), n)
        block = _squared_distances(points[start:stop], norms[start:stop], points, norms, out)
        block[np.arange(stop - start), np.arange(start, stop)] = 0.0  # a point is its own 0th neighbour, exactly
        radii[start:stop] = np.partition(block, k, axis=1)[:, k]
    return radii


def precision_recall(real, generated, *, k: int = K, real_radii: np.ndarray | None = None) -> PrecisionRecall:
    """Improved precision and recall of generated features (M, D) against real ones (N, D), with k-NN balls.

    real_radii: the real set's squared_knn_radii(real, k=k), when already known (the reference set is fixed).
    """
    real, generated = np.asarray(real), np.asarray(generated)
    assert real.ndim == 2 and generated.ndim == 2 and real.shape[1] == generated.shape[1], (
        f"features must be (N, D) with the same D, got {real.shape} and {generated.shape}")
    centre = np.asarray(real, np.float64).mean(axis=0)
    if real_radii is None:
        real_radii = squared_knn_radii(real, k=k, centre=centre)
    real_radii = np.asarray(real_radii, np.float32)
    assert real_radii.shape == (len(real),), f"real_radii must be ({len(real)},), got {real_radii.shape}"
    generated_radii = squared_knn_radii(generated, k=k, centre=centre)
    real_points, real_norms = _prepared(real, centre)
    generated_points, generated_norms = _prepared(generated, centre)
    realistic = np.zeros(len(generated), bool)
    covered = np.zeros(len(real), bool)
    out = _block(len(generated), len(real))
    # One pass over generated-vs-real blocks serves both: rows ask "in a real ball?", columns "in a generated one?".
    for start in range(0, len(generated), len(out)):
        stop = min(start + len(out), len(generated))
        block = _squared_distances(generated_points[start:stop], generated_norms[start:stop], real_points, real_norms,
                                   out)
        realistic[start:stop] = (block <= real_radii[None, :]).any(axis=1)
        covered |= (block <= generated_radii[start:stop, None]).any(axis=0)
    return PrecisionRecall(precision=float(realistic.mean()), recall=float(covered.mean()),
                           realistic=realistic, covered=covered, k=k)


def real_subset(n_real: int, n: int) -> np.ndarray:
    """Sorted indices of the min(n, n_real) real points compared with n generated ones (fixed seed: equal counts,
    as the paper compares, and the same real points for every generator)."""
    if n >= n_real:
        return np.arange(n_real)
    return np.sort(np.random.default_rng(SUBSET_SEED).permutation(n_real)[:n])


def against_reference(features, real_features, real_labels, *, k: int = K, num_classes: int = 10) -> dict:
    """Precision, recall and per-digit recall of generated features (M, D) against the reference set (N, D) with
    labels (N,): both sides use m = min(M, N) points. {} when m <= k (too few points for k-NN balls)."""
    features = np.asarray(features)
    m = min(len(features), len(real_features))
    if m <= k:
        return {}
    chosen = real_subset(len(real_features), m)
    labels = np.asarray(real_labels)[chosen]
    if not (np.isfinite(features[:m]).all()):
        return dict(precision=None, recall=None, pr_n=int(m), pr_k=k, per_class_recall=[None] * num_classes)
    result = precision_recall(real_features[chosen], features[:m], k=k)
    per_class = [float(result.covered[labels == d].mean()) if (labels == d).any() else None
                 for d in range(num_classes)]
    return dict(precision=result.precision, recall=result.recall, pr_n=int(m), pr_k=k, per_class_recall=per_class)
