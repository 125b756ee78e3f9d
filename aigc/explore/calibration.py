"""Calibrated evaluator confidence (temperature scaling) and an out-of-distribution flag.

The flag combines two distances, each divided by its 99.5th percentile on clean MNIST test digits:
the evaluator features' Mahalanobis distance to the nearest class mean (tied covariance), and the
pixel error left after projecting onto the read class's top principal components (blobs and
scrambled strokes are far from every class's subspace even when the classifier is sure).

Both are fit on MNIST test digits by `python -m aigc.explore.measure calibrate` and shipped as
evaluator_calibration.npz beside the evaluator (settings.calibration_path()). Without a readable file,
confidence is uncalibrated and nothing is OOD-flagged: the Calibration then says why (`problem`),
every Reading carries `calibrated=False`, and the log says so once per file.
"""
from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigc import settings
from aigc.runs.files import atomic_write_npz

LOG = logging.getLogger("aigc.explore.calibration")
DOUBT_CONFIDENCE = 0.9  # a calibrated confidence below this is doubtful
OOD_QUANTILE = 0.995  # each signal's threshold: this quantile of clean MNIST test digits
PIXEL_COMPONENTS = 20  # principal components kept per class for the pixel-space signal
NUM_CLASSES = 10


@dataclass(frozen=True)
class Calibration:
    """Temperature T > 0 and a tied-covariance class model of evaluator features (means (10, D), precision (D, D))."""

    temperature: float = 1.0
    means: np.ndarray | None = None  # (10, D) evaluator-feature class means
    precision: np.ndarray | None = None  # (D, D) shared inverse covariance
    pixel_means: np.ndarray | None = None  # (10, 784) class mean images in [0, 1]
    pixel_components: np.ndarray | None = None  # (10, K, 784) orthonormal principal components per class
    thresholds: tuple = (float("inf"), float("inf"))  # (feature distance, pixel error) at OOD_QUANTILE
    info: dict | None = None
    problem: str | None = None  # why this is the identity calibration (file missing or unreadable), else None

    @property
    def calibrated(self) -> bool:
        """False when the calibration file was missing or unreadable (temperature 1, no OOD model)."""
        return self.problem is None

    @property
    def has_ood(self) -> bool:
        """True when the class models were loaded (else nothing is flagged out of distribution)."""
        return self.means is not None and self.pixel_means is not None


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row softmax of (N, C) logits / temperature, float64."""
    scaled = np.asarray(logits, np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of labels (N,) under softmax(logits / T)."""
    probs = softmax(logits, temperature)
    return float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + 1e-12)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray, *, low: float = 0.05, high: float = 20.0) -> float:
    """The T in [low, high] minimising NLL (golden-section search on log T; NLL is unimodal in T)."""
    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(80):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(logits, labels, np.exp(c)) < nll(logits, labels, np.exp(d)):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def ece(probs: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> float:
    """Expected calibration error in [0, 1]: |accuracy - confidence| averaged over equal-width confidence bins."""
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = (predicted == labels).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lo) & (confidence <= hi)
        if in_bin.any():
            total += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(total)


def fit_class_model(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class means (10, D), shared precision (D, D)) of features (N, D), with a small ridge for stability."""
    features = np.asarray(features, np.float64)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(NUM_CLASSES)])
    centered = features - means[labels]
    covariance = centered.T @ centered / len(features)
    covariance += np.eye(len(covariance)) * 1e-3 * np.trace(covariance) / len(covariance)
    return means, np.linalg.inv(covariance)


def ood_score(features: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """(N,) Mahalanobis distance (>= 0) of each feature row to its nearest class mean; larger = less MNIST-like."""
    features = np.asarray(features, np.float64)
    diffs = features[:, None, :] - means[None, :, :]  # (N, 10, D)
    squared = ((diffs @ precision) * diffs).sum(axis=2)  # matmul, not a 3-operand einsum (a naive D x D loop)
    return np.sqrt(np.maximum(squared.min(axis=1), 0.0))


def fit_pixel_model(images: np.ndarray, labels: np.ndarray, *, k: int = PIXEL_COMPONENTS):
    """(class means (10, 784), components (10, k, 784)) float32 of (N, 28, 28) images in [0, 1], by SVD per class."""
    flat = np.asarray(images, np.float32).reshape(len(images), -1)
    means, components = [], []
    for c in range(NUM_CLASSES):
        rows = flat[labels == c]
        means.append(rows.mean(axis=0))
        components.append(np.linalg.svd(rows - means[-1], full_matrices=False)[2][:k])
    return np.stack(means), np.stack(components)


def pixel_error(images: np.ndarray, labels: np.ndarray, means: np.ndarray, components: np.ndarray) -> np.ndarray:
    """(N,) L2 error (>= 0) left after projecting each image onto its label's principal subspace."""
    residual = np.asarray(images, np.float32).reshape(len(images), -1) - means[labels]
    basis = components[labels]  # (N, k, 784)
    coefficients = np.matmul(basis, residual[:, :, None])  # (N, k, 1)
    projected = np.matmul(coefficients.transpose(0, 2, 1), basis)[:, 0]  # (N, 784)
    return np.sqrt(((residual - projected) ** 2).sum(axis=1))


def combined_score(features, images, labels, calibration: "Calibration") -> np.ndarray:
    """(N,) OOD score >= 0: the larger of the two distances over their thresholds; above 1 means flagged."""
    feature = ood_score(features, calibration.means, calibration.precision) / calibration.thresholds[0]
    pixel = pixel_error(images, labels, calibration.pixel_means, calibration.pixel_components) / calibration.thresholds[1]
    return np.maximum(feature, pixel)


def auroc(negatives: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve in [0, 1] for scores where positives should be larger (ties count half)."""
    scores = np.concatenate([negatives, positives])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_neg, n_pos = len(negatives), len(positives)
    return float((ranks[n_neg:].sum() - n_pos * (n_pos + 1) / 2) / (n_neg * n_pos))


def save_calibration(path: str | Path, calibration: Calibration) -> None:
    """Write a Calibration as a plain .npz (no pickles), atomically."""
    atomic_write_npz(Path(path), temperature=np.float64(calibration.temperature), means=calibration.means,
                     precision=calibration.precision, pixel_means=calibration.pixel_means.astype(np.float32),
                     pixel_components=calibration.pixel_components.astype(np.float32),
                     thresholds=np.array(calibration.thresholds, np.float64),
                     info=np.array(json.dumps(calibration.info or {}, sort_keys=True)))


def load_calibration(path: str | Path | None = None) -> Calibration:
    """The Calibration at path (default: beside the evaluator), cached per (path, mtime); identity with a problem when unusable."""
    path = Path(path) if path else settings.calibration_path()
    if not path.is_file():
        return _uncalibrated(f"no calibration file at {path}")
    return _load_cached(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, _mtime_ns: int) -> Calibration:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return Calibration(float(npz["temperature"]), npz["means"].astype(np.float64),
                               npz["precision"].astype(np.float64), npz["pixel_means"].astype(np.float32),
                               npz["pixel_components"].astype(np.float32), tuple(float(t) for t in npz["thresholds"]),
                               json.loads(str(npz["info"])))
    except Exception as error:  # noqa: BLE001  (a damaged file means "uncalibrated", never a crash)
        return _uncalibrated(f"{path} is unreadable ({type(error).__name__})")


@functools.lru_cache(maxsize=16)
def _uncalibrated(problem: str) -> Calibration:
    """The identity Calibration for a problem, logged once per distinct problem (the cache is the 'once')."""
    LOG.warning("evaluator confidence is uncalibrated and nothing is flagged out of distribution: %s", problem)
    return Calibration(problem=problem)
