"""Quality metrics with the shipped evaluator: Frechet digit distance, precision and recall, digit score, accuracy.

The evaluator (evaluator.keras in settings.checkpoint_dir()) is a small MNIST CNN; its penultimate
layer ('features', 128-d) gives the features whose Frechet distance to the MNIST test set is the
FDD. evaluator_stats.npz beside it holds the test-set mean and covariance and the calibration
ladder, and the test set's features with their labels (float16, for precision and recall: precision_recall.py),
so no dataset is needed at run time. Both paths are resolved at each call, from the same
folder as the calibration (explore/calibration.py), so $AIGC_CHECKPOINT_DIR moves all three.
"""
from __future__ import annotations

import functools
import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aigc import settings
from aigc.runs.files import atomic_write_bytes, atomic_write_npz

NUM_CLASSES = 10
RARE_SHARE = 0.25  # a digit seen less than 25% as often as expected counts as collapsed
LADDER_NAMES = ("floor", "noise_0.1", "shift_1px", "blur_0.7")
EPS = 1e-12


class EvaluatorError(Exception):
    """The evaluator or its statistics are missing or unusable; str(error) is the whole message."""


@dataclass(frozen=True)
class Reference:
    """The MNIST test set in evaluator features, for precision and recall; its ladder of real-vs-real figures."""

    features: np.ndarray  # (N, D) float32 (stored as float16)
    labels: np.ndarray  # (N,) int64 digits
    pr_ladder: dict  # rung name -> {"precision": p, "recall": r}, on min(N, ladder_n) points each

    def of_digit(self, digit: int) -> np.ndarray:
        """(N_digit, D) features of the test images of one digit."""
        return self.features[self.labels == digit]


@dataclass(frozen=True)
class Evaluator:
    """The loaded evaluator: a model giving (features, probs) plus the MNIST test reference stats."""

    model: object  # keras.Model: images (N, 28, 28) in [0, 1] -> [features (N, D), probs (N, 10)]
    mu: np.ndarray  # (D,) float64
    sigma: np.ndarray  # (D, D) float64
    ladder: dict  # rung name -> FDD, in LADDER_NAMES order
    info: dict  # how the evaluator was trained (accuracy, seconds, seed)
    serve: object = None  # the model as a tf.function with a fixed signature (traced once), when built
    reference: Reference | None = None  # test-set features for precision and recall (None: stats without them)

    def outputs(self, images: np.ndarray):
        """[features (N, D), probs (N, 10)] for float32 images (N, 28, 28) in [0, 1]."""
        if self.serve is not None:
            return self.serve(images)
        return self.model(images, training=False)


def evaluator_available() -> bool:
    """True when the evaluator and its reference statistics exist in settings.checkpoint_dir()."""
    return settings.evaluator_path().is_file() and settings.evaluator_stats_path().is_file()


def load_evaluator(model_path: str | Path | None = None, stats_path: str | Path | None = None) -> Evaluator:
    """The Evaluator for these files (default: the checkpoint folder's), cached per (path, mtime); EvaluatorError when unusable."""
    model_path = Path(model_path or settings.evaluator_path())
    stats_path = Path(stats_path or settings.evaluator_stats_path())
    for path in (model_path, stats_path):
        if not path.is_file():
            raise EvaluatorError(f"evaluator file not found: {path} (retrain it: python -m aigc eval --train-evaluator)")
    return _load_cached(str(model_path), model_path.stat().st_mtime_ns, str(stats_path), stats_path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _load_cached(model_path: str, _model_mtime: int, stats_path: str, _stats_mtime: int) -> Evaluator:
    import keras

    try:
        base = keras.models.load_model(model_path, compile=False)
        model = keras.Model(base.input, [base.get_layer("features").output, base.output])
    except Exception as error:  # Keras raises many types for a damaged archive
        raise EvaluatorError(f"{model_path} could not be loaded as the evaluator ({type(error).__name__}: {error})") from None
    mu, sigma, ladder, info = read_stats(stats_path)
    if mu.shape != (model.outputs[0].shape[-1],):
        raise EvaluatorError(f"{stats_path} has {mu.shape[0]}-d statistics for a {model.outputs[0].shape[-1]}-d evaluator")
    reference = read_reference(stats_path)
    if reference is not None and reference.features.shape[1] != len(mu):
        raise EvaluatorError(f"{stats_path} has {reference.features.shape[1]}-d test features for {len(mu)}-d stats")
    return Evaluator(model=model, mu=mu, sigma=sigma, ladder=ladder, info=info, serve=_compiled(model),
                     reference=reference)


def _compiled(model):
    """The evaluator as one traced tf.function (batch dimension open): no retracing across requests."""
    import tensorflow as tf

    spec = tf.TensorSpec([None, 28, 28], tf.float32, name="images")
    return tf.function(lambda images: model(images, training=False), input_signature=[spec])


def read_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """(mu (D,), sigma (D, D), ladder {name: fdd}, info) from a reference-stats .npz."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            mu, sigma = npz["mu"].astype(np.float64), npz["sigma"].astype(np.float64)
            ladder = {str(k): float(v) for k, v in zip(npz["ladder_names"], npz["ladder_values"])}
            info = json.loads(str(npz["info"]))
    except Exception as error:  # noqa: BLE001  (zip, key and JSON errors all mean the same to the user)
        raise EvaluatorError(f"{path} is not an evaluator statistics file ({type(error).__name__}: {error})") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise EvaluatorError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not match")
    return mu, sigma, ladder, info


def read_reference(path: str | Path) -> Reference | None:
    """The test-set features, labels and precision/recall ladder in a reference-stats .npz; None when absent."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "features" not in npz.files:
                return None  # stats written before precision and recall: FDD works, P/R is not available
            features, labels = npz["features"].astype(np.float32), npz["labels"].astype(np.int64)
            names = [str(name) for name in npz["pr_ladder_names"]]
            pr_ladder = {name: dict(precision=float(p), recall=float(r))
                         for name, p, r in zip(names, npz["pr_ladder_precision"], npz["pr_ladder_recall"])}
    except Exception as error:  # noqa: BLE001  (as in read_stats)
        raise EvaluatorError(f"{path}: unreadable test-set features ({type(error).__name__}: {error})") from None
    if features.ndim != 2 or labels.shape != (len(features),):
        raise EvaluatorError(f"{path}: test features {features.shape} and labels {labels.shape} do not match")
    return Reference(features=features, labels=labels, pr_ladder=pr_ladder)


def write_stats(path: str | Path, mu: np.ndarray, sigma: np.ndarray, ladder: dict, info: dict,
                reference: Reference | None = None) -> None:
    """Save reference stats (and the test features, when given) as a plain .npz (no pickles), atomically."""
    extra = {}
    if reference is not None:
        names = list(reference.pr_ladder)
        # float16 halves the file; its 3-digit rounding moves k-NN distances far less than sampling does.
        extra = dict(features=reference.features.astype(np.float16), labels=reference.labels.astype(np.uint8),
                     pr_ladder_names=np.array(names, dtype=str),
                     pr_ladder_precision=np.array([reference.pr_ladder[k]["precision"] for k in names], np.float64),
                     pr_ladder_recall=np.array([reference.pr_ladder[k]["recall"] for k in names], np.float64))
    arrays = dict(mu=mu.astype(np.float64), sigma=sigma.astype(np.float64),
                  ladder_names=np.array(list(ladder), dtype=str),
                  ladder_values=np.array(list(ladder.values()), dtype=np.float64),
                  info=np.array(json.dumps(info, sort_keys=True)), **extra)
    if not extra:
        atomic_write_npz(Path(path), **arrays)
        return
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # the ReLU features are mostly zeros: 2.6 MB -> about 0.75 MB
    atomic_write_bytes(Path(path), buffer.getvalue())


def _as_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    assert images.ndim == 3 and images.shape[1:] == (28, 28), f"expected images (N, 28, 28), got {images.shape}"
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return np.clip(images.astype(np.float32), 0.0, 1.0)


def evaluator_outputs(images, *, evaluator: Evaluator | None = None, batch_size: int = 500):
    """(features (N, D) float64, probs (N, 10) float64) for images (N, 28, 28) in [0, 1] (or uint8)."""
    evaluator = evaluator or load_evaluator()
    images = _as_images(images)
    features, probs = [], []
    for start in range(0, len(images), batch_size):
        f, p = evaluator.outputs(images[start:start + batch_size])
        features.append(np.asarray(f, np.float64))
        probs.append(np.asarray(p, np.float64))
    if not features:
        return np.zeros((0, evaluator.mu.shape[0])), np.zeros((0, NUM_CLASSES))
    return np.concatenate(features), np.concatenate(probs)


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) of features (N, D), float64."""
    features = np.asarray(features, np.float64)
    assert len(features) >= 2, f"need at least 2 samples for a covariance, got {len(features)}"
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), in float64 (the FID formula)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    assert mu1.shape == mu2.shape and sigma1.shape == sigma2.shape, "statistics have different dimensions"
    if not all(np.isfinite(a).all() for a in (mu1, sigma1, mu2, sigma2)):
        return float("nan")  # NaN images (a diverged generator) have no distance; summary() turns it into None
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular products are handled below
        covmean = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            # Singular product (few samples or dead features): offset the diagonals, as pytorch-fid does.
            offset = np.eye(len(sigma1)) * eps
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Tiny imaginary parts are numerical noise; keep the real part.
        covmean = covmean.real
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def fdd(features: np.ndarray, *, evaluator: Evaluator | None = None) -> float:
    """Frechet digit distance of features (N, D) to the MNIST test reference."""
    evaluator = evaluator or load_evaluator()
    mu, sigma = feature_stats(features)
    return frechet_distance(mu, sigma, evaluator.mu, evaluator.sigma)


def digit_score(probs: np.ndarray) -> float:
    """exp(E_x[KL(p(y|x) || p(y))]) for probs (N, 10): 1 (useless) .. 10 (sure and balanced)."""
    probs = np.clip(np.asarray(probs, np.float64), EPS, 1.0)
    marginal = probs.mean(axis=0, keepdims=True)
    kl = (probs * (np.log(probs) - np.log(marginal))).sum(axis=1)
    return float(np.exp(kl.mean()))


def class_histogram(pred: np.ndarray) -> list[int]:
    """Counts (10,) of predicted digits."""
    return np.bincount(np.asarray(pred, np.int64), minlength=NUM_CLASSES)[:NUM_CLASSES].tolist()


def collapse_check(histogram, expected) -> tuple[list[int], list[int], str | None]:
    """(missing digits, rare digits, warning or None): rare = seen < RARE_SHARE of its expected count."""
    histogram, expected = np.asarray(histogram, np.float64), np.asarray(expected, np.float64)
    missing = [d for d in range(NUM_CLASSES) if expected[d] > 0 and histogram[d] == 0]
    rare = [d for d in range(NUM_CLASSES) if d not in missing and histogram[d] < RARE_SHARE * expected[d]]
    if not missing and not rare:
        return missing, rare, None
    parts = []
    if missing:
        parts.append(f"{_digits(missing)} never produced")
    if rare:
        parts.append(f"{_digits(rare)} rare (< {RARE_SHARE:.0%} of the expected share)")
    return missing, rare, "possible mode collapse: " + "; ".join(parts)


def _digits(digits: list[int]) -> str:
    """'digit 3' or 'digits 3, 5'."""
    return ("digit " if len(digits) == 1 else "digits ") + ", ".join(map(str, digits))


def evaluate_features(features, probs, requested_labels=None, *, evaluator: Evaluator | None = None,
                      per_digit: bool = False) -> dict:
    """All metrics from evaluator outputs: features (N, D), probs (N, 10), requested labels (N,) or None.

    per_digit: add per_class_fdd, each digit's samples (requested, else as the evaluator reads them) against the
    test images of that digit (10 sqrtm: about a second, so the epoch-end evaluation leaves it out)."""
    evaluator = evaluator or load_evaluator()
    n = len(probs)
    pred = probs.argmax(axis=1)
    histogram = class_histogram(pred)
    result = dict(n=int(n), fdd=fdd(features, evaluator=evaluator), digit_score=digit_score(probs),
                  class_histogram=histogram, mean_confidence=float(probs.max(axis=1).mean()),
                  class_accuracy=None, per_class_accuracy=None,
                  fdd_floor=evaluator.ladder.get("floor"), ladder=dict(evaluator.ladder),
                  ladder_n=_whole_or_none(evaluator.info.get("ladder_n")))  # FDD depends on n: the ladder's count
    if requested_labels is not None:
        requested = np.asarray(requested_labels, np.int64)
        assert requested.shape == (n,), f"requested_labels must be ({n},), got {requested.shape}"
        hits = pred == requested
        result["class_accuracy"] = float(hits.mean())
        result["per_class_accuracy"] = [float(hits[requested == d].mean()) if (requested == d).any() else None
                                        for d in range(NUM_CLASSES)]
        expected = np.bincount(requested, minlength=NUM_CLASSES)[:NUM_CLASSES]
    else:
        expected = np.full(NUM_CLASSES, n / NUM_CLASSES)
        requested = None
    result.update(precision_recall_of(features, evaluator))
    if per_digit:
        result["per_class_fdd"] = per_class_fdd(features, pred if requested_labels is None else requested,
                                                evaluator=evaluator)
    absent, rare, warning = collapse_check(histogram, expected)
    # collapsed_digits = every collapsed bar (absent or rare); absent_digits = never produced at all.
    result.update(collapsed_digits=sorted(absent + rare), absent_digits=absent, rare_digits=rare,
                  collapse=warning is not None, collapse_warning=warning)
    return result


def precision_recall_of(features, evaluator: Evaluator) -> dict:
    """precision, recall (k = 3), per_class_recall (10), pr_n, pr_k and pr_ladder of features (N, D) against the
    test set (min(N, 10,000) points each); None values when the stats carry no test features."""
    from aigc.quality import precision_recall

    reference = evaluator.reference
    empty = dict(precision=None, recall=None, per_class_recall=None, pr_n=None, pr_k=precision_recall.K,
                 pr_ladder={})
    if reference is None:
        return empty
    found = precision_recall.against_reference(features, reference.features, reference.labels,
                                               num_classes=NUM_CLASSES)
    return dict(empty, **found, pr_ladder={name: dict(pr) for name, pr in reference.pr_ladder.items()})


def per_class_fdd(features, digits, *, evaluator: Evaluator) -> list[float | None] | None:
    """(10,) FDD of each digit's features (N, D) (digits (N,)) to the test images of that digit; None where a digit
    has fewer than 2 samples, or when the stats carry no test features."""
    if evaluator.reference is None:
        return None
    features, digits = np.asarray(features, np.float64), np.asarray(digits)
    values = []
    for digit in range(NUM_CLASSES):
        mine, theirs = features[digits == digit], evaluator.reference.of_digit(digit)
        if len(mine) < 2 or len(theirs) < 2:
            values.append(None)
            continue
        values.append(frechet_distance(*feature_stats(mine), *feature_stats(theirs)))
    return values


def evaluate_generator(generator, config, *, n: int = 10000, seed: int = 0, batch_size: int = 500,
                       evaluator: Evaluator | None = None, per_digit: bool = False, latent_scale: float = 1.0) -> dict:
    """Metrics of n samples of a generator (balanced digits 0..9 when config.conditional), drawn in batches, from
    latents multiplied by latent_scale (the served truncation)."""
    from aigc.engine.sampling import latents, run_generator

    assert n >= 2, f"n must be at least 2, got {n}"
    evaluator = evaluator or load_evaluator()
    z = latents(n, config.latent_dim, seed=seed, truncation=latent_scale)
    requested = (np.arange(n) % NUM_CLASSES).astype(np.int32) if config.conditional else None
    features, probs = [], []
    for start in range(0, n, batch_size):
        chunk = slice(start, start + batch_size)
        images = run_generator(generator, z[chunk], None if requested is None else requested[chunk],
                               batch_size=batch_size)
        f, p = evaluator_outputs(images, evaluator=evaluator, batch_size=batch_size)
        features.append(f)
        probs.append(p)
    result = evaluate_features(np.concatenate(features), np.concatenate(probs), requested, evaluator=evaluator,
                               per_digit=per_digit)
    result.update(seed=int(seed), conditional=bool(config.conditional), preset=config.preset,
                  latent_scale=float(latent_scale))
    return result


def summary(result: dict) -> dict:
    """Flat JSON-able scalars for metrics.jsonl: fdd, precision, recall, digit_score, class_accuracy,
    collapsed_digits, collapse (precision and recall None when the stats carry no test features)."""
    return dict(fdd=_rounded_or_none(result["fdd"], 4), digit_score=_rounded_or_none(result["digit_score"], 4),
                precision=_rounded_or_none(result.get("precision"), 4),
                recall=_rounded_or_none(result.get("recall"), 4),
                class_accuracy=_rounded_or_none(result["class_accuracy"], 5),
                collapsed_digits=[int(d) for d in result["collapsed_digits"]], collapse=bool(result["collapse"]))


def _rounded_or_none(value, digits: int) -> float | None:
    """Rounded float, or None for None / NaN / inf (strict JSON has no NaN)."""
    return round(float(value), digits) if value is not None and np.isfinite(value) else None


def _whole_or_none(value) -> int | None:
    """A recorded count as an int, or None when it was not recorded (stats written before counts were)."""
    return int(value) if isinstance(value, (int, float)) and np.isfinite(value) else None
