"""The quality metrics on known cases: real digits near the floor, constants far away, collapse flagged."""
from pathlib import Path

import numpy as np
import pytest

from aigc.quality import metrics
from aigc.engine.spec import ModelConfig

FIXTURE = Path(__file__).parent / "data" / "mnist_test_500.npz"  # 50 MNIST test images per digit
needs_evaluator = pytest.mark.skipif(not metrics.evaluator_available(), reason="shipped evaluator missing")


@pytest.fixture(scope="module")
def real():
    """(images (500, 28, 28) in [0, 1], labels (500,)) from the committed fixture."""
    with np.load(FIXTURE, allow_pickle=False) as npz:
        return npz["x"].astype(np.float32) / 255.0, npz["y"].astype(np.int64)


def fake_generator(images: np.ndarray, *, conditional: bool, latent_dim: int = 8):
    """A keras model that ignores z: returns images[label] (conditional) or images[0], in [-1, 1]."""
    import keras
    from keras import layers

    table = (images.reshape(len(images), 784) * 2.0 - 1.0).astype(np.float32)
    z = keras.Input((latent_dim,), name="z")
    if conditional:
        label = keras.Input((), dtype="int32", name="label")
        pixels = layers.Embedding(len(images), 784, embeddings_initializer=keras.initializers.Constant(table))(label)
        inputs = [z, label]
    else:
        pixels = layers.Dense(784, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(table[0]))(z)
        inputs = z
    return keras.Model(inputs, layers.Reshape((28, 28, 1))(pixels))


def test_frechet_distance_of_identical_stats_is_zero():
    features = np.random.default_rng(0).normal(size=(400, 16))
    mu, sigma = metrics.feature_stats(features)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    # A pure mean shift of 3 in every one of 16 dimensions costs 16 * 9.
    assert metrics.frechet_distance(mu + 3.0, sigma, mu, sigma) == pytest.approx(144.0, rel=1e-6)


def test_frechet_distance_survives_singular_covariances():
    features = np.zeros((5, 16))
    features[:, 0] = np.arange(5)  # rank-1 covariance: sqrtm is ill-conditioned
    mu, sigma = metrics.feature_stats(features)
    value = metrics.frechet_distance(mu, sigma, np.zeros(16), np.eye(16))
    assert np.isfinite(value) and value > 0


def test_non_finite_features_give_no_fdd():
    mu, sigma = np.zeros(4), np.eye(4)
    assert np.isnan(metrics.frechet_distance(mu * np.nan, sigma, mu, sigma))
    result = dict(fdd=float("nan"), digit_score=float("nan"), class_accuracy=None, collapsed_digits=[], collapse=False,
                  precision=float("nan"))
    assert metrics.summary(result) == dict(fdd=None, precision=None, recall=None, digit_score=None, class_accuracy=None,
                                           collapsed_digits=[], collapse=False)


def test_digit_score_bounds():
    confident_balanced = np.eye(10)[np.arange(1000) % 10]
    assert metrics.digit_score(confident_balanced) == pytest.approx(10.0, rel=1e-6)
    assert metrics.digit_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)
    one_digit = np.eye(10)[np.zeros(100, int)]
    assert metrics.digit_score(one_digit) == pytest.approx(1.0)


def evaluate(images, labels=None) -> dict:
    """Every metric of a batch of images, as the trainer and the eval command compute them."""
    return metrics.evaluate_features(*metrics.evaluator_outputs(images), labels)


def test_collapse_check_thresholds():
    expected = np.full(10, 100)
    absent, rare, warning = metrics.collapse_check([100] * 10, expected)
    assert (absent, rare, warning) == ([], [], None)
    histogram = [100] * 10
    histogram[3], histogram[7] = 0, 20  # 20 < 25% of 100
    absent, rare, warning = metrics.collapse_check(histogram, expected)
    assert absent == [3] and rare == [7] and "collapse" in warning


@needs_evaluator
def test_real_digits_score_near_the_floor(real):
    images, labels = real
    result = evaluate(images, labels)
    ladder = result["ladder"]
    assert list(ladder) == list(metrics.LADDER_NAMES)
    assert ladder["floor"] == min(ladder.values()) and ladder["floor"] < 2.0
    # 500 samples carry a finite-sample bias above the 10k floor, yet stay well below the shift rung.
    assert result["fdd"] < ladder["shift_1px"], result["fdd"]
    assert result["class_accuracy"] >= 0.98
    assert result["digit_score"] > 9.0
    assert not result["collapse"] and sum(result["class_histogram"]) == len(images)


@needs_evaluator
def test_constant_images_score_badly(real):
    constant = np.full((200, 28, 28), 0.5, np.float32)
    result = evaluate(constant)
    assert result["fdd"] > 10 * result["ladder"]["blur_0.7"]
    assert result["digit_score"] < 1.5
    assert result["collapse"] and len(result["collapsed_digits"]) >= 9


@needs_evaluator
def test_one_digit_generator_trips_the_collapse_warning(real):
    images, labels = real
    one = images[labels == 1][:1]
    result = metrics.evaluate_generator(fake_generator(one, conditional=False), ModelConfig(preset="seed", latent_dim=8),
                                        n=200, batch_size=64)
    assert result["collapse"] and result["collapse_warning"]
    assert 1 not in result["collapsed_digits"] and len(result["collapsed_digits"]) >= 8
    assert result["class_accuracy"] is None
    summary = metrics.summary(result)
    assert set(summary) == {"fdd", "precision", "recall", "digit_score", "class_accuracy", "collapsed_digits",
                            "collapse"}
    # One real 1, repeated: realistic (precision), yet every other style of every digit is missing (recall).
    assert summary["precision"] > 0.9 and summary["recall"] < 0.05, summary
    assert summary["collapse"] is True and summary["class_accuracy"] is None


@needs_evaluator
def test_conditional_generator_gets_balanced_labels(real):
    images, labels = real
    exemplars = np.stack([images[labels == d][0] for d in range(10)])
    config = ModelConfig(preset="dcgan", latent_dim=8)
    result = metrics.evaluate_generator(fake_generator(exemplars, conditional=True), config, n=100, batch_size=30)
    assert result["n"] == 100 and result["class_accuracy"] == pytest.approx(1.0)
    assert result["per_class_accuracy"] == [1.0] * 10 and result["class_histogram"] == [10] * 10
    assert not result["collapse"] and result["collapse_warning"] is None
    assert result["fdd_floor"] == result["ladder"]["floor"]
    # Ten images repeated: recognisable, but the FDD sees the missing variety.
    assert result["fdd"] > result["ladder"]["floor"]
