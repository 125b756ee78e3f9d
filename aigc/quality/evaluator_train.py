"""Train the evaluator: a small MNIST CNN whose penultimate layer gives the FDD features.

Run as `python -m aigc eval --train-evaluator [--data PATH]`; it writes the model and the
reference statistics (MNIST test set: feature statistics, the features themselves for precision and recall, and
the calibration ladder) that aigc.quality.metrics reads.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from aigc.text import counted
from aigc.runs.files import atomic_write_with
from aigc.text import duration

FEATURES_LAYER = "features"
FEATURE_DIM = 128
DEFAULT_EPOCHS = 6
DEFAULT_SEED = 0
BATCH_SIZE = 128
LADDER_N = 10_000


def build_evaluator(*, feature_dim: int = FEATURE_DIM):
    """CNN: images (N, 28, 28) in [0, 1] -> class probabilities (N, 10); layer 'features' is (N, feature_dim)."""
    import keras
    from keras import layers

    images = keras.Input((28, 28), name="image")
    x = layers.Reshape((28, 28, 1))(images)
    for filters in (32, 64):
        # Two valid 3x3 convolutions then a pool: 28 -> 24 -> 12, then 12 -> 8 -> 4.
        for _ in range(2):
            x = layers.Conv2D(filters, 3, use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.25)(x)
    features = layers.Dense(feature_dim, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.4)(features)
    probs = layers.Dense(10, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(images, probs, name="aigc_evaluator")


def train_evaluator(x_train, y_train, x_test, y_test, *, epochs: int = DEFAULT_EPOCHS, seed: int = DEFAULT_SEED,
                    verbose: int = 2):
    """Fit the evaluator on uint8 (N, 28, 28) images; returns (model, info dict with test_accuracy, train_seconds)."""
    import keras

    keras.utils.set_random_seed(seed)  # python, numpy and TensorFlow seeds: reruns land within noise
    model = build_evaluator()
    steps = epochs * int(np.ceil(len(x_train) / BATCH_SIZE))
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps, alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    start = time.time()
    model.fit(x_train.astype(np.float32) / 255.0, y_train.astype(np.int32), batch_size=BATCH_SIZE, epochs=epochs,
              shuffle=True, verbose=verbose)
    seconds = time.time() - start
    _loss, accuracy = model.evaluate(x_test.astype(np.float32) / 255.0, y_test.astype(np.int32),
                                     batch_size=1000, verbose=0)
    info = dict(test_accuracy=float(accuracy), train_seconds=round(seconds, 1), epochs=epochs, seed=seed,
                n_train=int(len(x_train)), n_test=int(len(x_test)), keras_version=keras.__version__)
    return model, info


def save_model(model, path: str | Path) -> None:
    """Write the evaluator .keras atomically (files.atomic_write_with: temporary name, fsync, os.replace)."""
    atomic_write_with(Path(path), model.save, suffix=".keras")


def main(*, data: str | None, model_path: Path, stats_path: Path, epochs: int, seed: int, log=print) -> dict:
    """Train, save, then compute and save the reference stats and ladder; returns the info dict."""
    from aigc.engine.data import load_mnist

    x_train, y_train, x_test, y_test = load_mnist(data)
    log(f"training the evaluator on {len(x_train):,} images for {counted(epochs, 'epoch')} (seed {seed})")
    model, info = train_evaluator(x_train, y_train, x_test, y_test, epochs=epochs, seed=seed)
    log(f"test accuracy {info['test_accuracy']:.4f} after {duration(info['train_seconds'])}")
    save_model(model, model_path)
    log(f"wrote {model_path}; computing reference statistics and the calibration ladder")
    build_reference_stats(model_path, stats_path, x_train, x_test, y_test, info=info, log=log)
    return info


def ladder_images(x_train, *, n: int = LADDER_N, seed: int = DEFAULT_SEED) -> dict:
    """The ladder's image sets: a seeded sample of n training images (uint8) as is and degraded, in [0, 1]."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    clean = x_train[rng.choice(len(x_train), size=min(n, len(x_train)), replace=False)].astype(np.float32) / 255.0
    shifted = np.zeros_like(clean)
    shifted[:, :, 1:] = clean[:, :, :-1]  # one pixel to the right, zero fill
    return {
        "floor": clean,
        "noise_0.1": np.clip(clean + rng.normal(0.0, 0.1, clean.shape).astype(np.float32), 0.0, 1.0),
        "shift_1px": shifted,
        "blur_0.7": ndimage.gaussian_filter(clean, sigma=(0, 0.7, 0.7)),
    }


def compute_ladder(evaluator, x_train, *, n: int = LADDER_N, seed: int = DEFAULT_SEED) -> tuple[dict, dict]:
    """Each ladder rung against the evaluator's reference: ({name: fdd}, {name: {precision, recall}}) in
    LADDER_NAMES order (the second empty when the evaluator carries no test features)."""
    from aigc.quality import metrics

    ladder, pr_ladder = {}, {}
    for name, images in ladder_images(x_train, n=n, seed=seed).items():
        features, _probs = metrics.evaluator_outputs(images, evaluator=evaluator)
        ladder[name] = round(metrics.fdd(features, evaluator=evaluator), 4)
        found = metrics.precision_recall_of(features, evaluator)
        if found["precision"] is not None:
            pr_ladder[name] = dict(precision=round(found["precision"], 4), recall=round(found["recall"], 4))
    return ladder, pr_ladder


def reference_of(features, y_test):
    """The metrics.Reference of the test images' features (N, D) and labels (N,), without its ladder yet."""
    from aigc.quality import metrics

    # Stored as float16: use the rounded values here too, so the ladder is measured on what is shipped.
    return metrics.Reference(features=features.astype(np.float16).astype(np.float32),
                             labels=np.asarray(y_test, np.int64), pr_ladder={})


def _log_ladders(ladder: dict, pr_ladder: dict, log) -> None:
    log("ladder: " + ", ".join(f"{name} {value:.3f}" for name, value in ladder.items()))
    if pr_ladder:
        log("precision / recall (k = 3): " + ", ".join(f"{name} {pr['precision']:.3f} / {pr['recall']:.3f}"
                                                      for name, pr in pr_ladder.items()))


def build_reference_stats(model_path, stats_path, x_train, x_test, y_test, *, info: dict, log=print) -> dict:
    """Write stats_path: MNIST test-set feature mean/covariance, the ladder and info; returns the ladder."""
    from aigc.quality import metrics

    import keras

    base = keras.models.load_model(model_path, compile=False)
    model = keras.Model(base.input, [base.get_layer(FEATURES_LAYER).output, base.output])
    # The reference stats do not exist yet: a probe Evaluator with placeholder stats gives the features.
    probe = metrics.Evaluator(model=model, mu=np.zeros(1), sigma=np.zeros((1, 1)), ladder={}, info=info)
    features, probs = metrics.evaluator_outputs(x_test, evaluator=probe)
    mu, sigma = metrics.feature_stats(features)
    test_set = reference_of(features, y_test)
    reference = metrics.Evaluator(model=model, mu=mu, sigma=sigma, ladder={}, info=info, reference=test_set)
    ladder, pr_ladder = compute_ladder(reference, x_train)
    info = dict(info, test_accuracy_check=float((probs.argmax(1) == y_test).mean()), ladder_n=LADDER_N)
    metrics.write_stats(stats_path, mu, sigma, ladder, info, reference=replace(test_set, pr_ladder=pr_ladder))
    _log_ladders(ladder, pr_ladder, log)
    return ladder


def recompute_ladder(*, data: str | None, model_path: Path, stats_path: Path, log=print) -> dict:
    """Recompute the ladder from MNIST training images with the existing evaluator, and store the test set's features
    for precision and recall (mu and sigma are kept); rewrites stats_path."""
    from aigc.quality import metrics
    from aigc.engine.data import load_mnist

    evaluator = metrics.load_evaluator(model_path, stats_path)
    x_train, _y_train, x_test, y_test = load_mnist(data)
    test_set = reference_of(metrics.evaluator_outputs(x_test, evaluator=evaluator)[0], y_test)
    drift = float(np.abs(test_set.features.mean(axis=0) - evaluator.mu).max())
    log(f"test features: {len(x_test):,}; their mean is within {drift:.2g} of the stored mu")
    evaluator = replace(evaluator, reference=test_set)
    ladder, pr_ladder = compute_ladder(evaluator, x_train)
    metrics.write_stats(stats_path, evaluator.mu, evaluator.sigma, ladder, evaluator.info,
                        reference=replace(test_set, pr_ladder=pr_ladder))
    _log_ladders(ladder, pr_ladder, log)
    return ladder
