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


HAND_MIN_HITS = 6  # a usable hand writes at least 6 of the ten as themselves (inverted MNIST test digits: 7 to 10)


def hand_problem(labels, *, inverted_as: int, read_as: int) -> str | None:
    """Why a hand cannot be pinned, or None: labels (10,) are the evaluator's readings of its digits 0..9.

    A latent found for another digit than the one drawn (a 1 inverted as an 8) often writes that digit for
    every label: Write a number would then write 2026 as 1121.
    """
    labels = [int(label) for label in labels]
    wrong = [digit for digit, label in enumerate(labels) if label != digit]
    if len(labels) != 10 or len(wrong) <= 10 - HAND_MIN_HITS:
        return None if len(labels) == 10 else "This hand cannot be pinned: it was not read as ten digits."
    if inverted_as != read_as:
        advice = f"invert the drawing as the digit you drew (the evaluator reads {read_as}), not as {inverted_as}"
    else:
        advice = "draw the digit again, larger and closer to how MNIST digits look"
    return (f"This hand cannot be pinned: it does not write the ten digits (0-9 read as {', '.join(map(str, labels))}; "
            f"{len(wrong)} of 10 wrong), so Write a number would write other digits than typed. To pin a hand, {advice}.")
