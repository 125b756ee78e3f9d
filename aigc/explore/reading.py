"""What the evaluator reads in each image: label, calibrated confidence, an out-of-distribution flag, doubt."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aigc.explore.calibration import DOUBT_CONFIDENCE, Calibration, combined_score, load_calibration, softmax
from aigc.quality import metrics


@dataclass(frozen=True)
class Reading:
    """Per image: label (N,) int, confidence (N,) in [0, 1], ood (N,) bool, doubt (N,) bool, OOD score (N,) >= 0 (> 1 flagged).

    calibrated is False when no calibration was found: confidence is the raw softmax and ood is all False.
    """

    labels: np.ndarray
    confidence: np.ndarray
    ood: np.ndarray
    doubt: np.ndarray
    score: np.ndarray
    calibrated: bool = True


def features_and_logits(images: np.ndarray, *, evaluator=None) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D), logits (N, 10)) float64 for images (N, 28, 28) in [0, 1]: logits from the softmax layer's weights."""
    evaluator = evaluator or metrics.load_evaluator()
    features, _probs = metrics.evaluator_outputs(images, evaluator=evaluator)
    kernel, bias = evaluator.model.get_layer("probs").get_weights()
    return features, features @ kernel.astype(np.float64) + bias.astype(np.float64)


def read_images(images: np.ndarray, *, requested=None, evaluator=None,
                calibration: Calibration | None = None) -> Reading:
    """Read (N, 28, 28) images in [0, 1]; requested: None, an int or (N,) ints the images should show."""
    calibration = calibration or load_calibration()
    features, logits = features_and_logits(images, evaluator=evaluator)
    probs = softmax(logits, calibration.temperature)
    labels, confidence = probs.argmax(axis=1), probs.max(axis=1)
    if calibration.has_ood:
        score = combined_score(features, np.asarray(images, np.float32), labels, calibration)
    else:
        score = np.zeros(len(images))
    ood = score > 1.0
    doubt = ood | (confidence < DOUBT_CONFIDENCE)
    if requested is not None:
        doubt = doubt | (labels != np.broadcast_to(np.asarray(requested), labels.shape))
    return Reading(labels.astype(np.int64), confidence, ood, doubt, score, calibration.calibrated)


def tile_texts(reading: Reading) -> list[str]:
    """One short caption per tile: '7 98%', with '?' for doubt and '!' for out of distribution."""
    texts = []
    for label, confidence, ood, doubt in zip(reading.labels, reading.confidence, reading.ood, reading.doubt):
        mark = "!" if ood else "?" if doubt else ""
        texts.append(f"{label} {percent(confidence)}{mark}")
    return texts


def percent(confidence: float) -> str:
    """A confidence in [0, 1] as '87%', never '100%' (a calibrated model is never certain): '>99%'."""
    return ">99%" if confidence >= 0.995 else f"{confidence:.0%}"
