"""settings.py owns the evaluator's folder: the evaluator, its statistics and its calibration move together."""
from __future__ import annotations

import ast
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from aigc import settings
from aigc.explore import calibration as cal
from aigc.explore.corrupt import blobs
from aigc.quality import metrics

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "checkpoints"
FILES = (settings.EVALUATOR_FILE, settings.EVALUATOR_STATS_FILE, settings.CALIBRATION_FILE)
needs_shipped = pytest.mark.skipif(not all((SHIPPED / name).is_file() for name in FILES),
                                   reason="the shipped evaluator, statistics or calibration is missing")
ENV_NAME = re.compile(r"AIGC_[A-Z][A-Z_]*")


def test_every_aigc_variable_is_named_in_settings_only():
    """A variable's name as a whole string (or keyword) anywhere in the package but settings.py is a second owner."""
    declared = {value for value in vars(settings).values() if isinstance(value, str) and ENV_NAME.fullmatch(value)}
    elsewhere = set()
    for path in (REPO / "aigc").rglob("*.py"):
        if path.name == "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else node.arg if isinstance(node, ast.keyword) else None
            if isinstance(text, str) and ENV_NAME.fullmatch(text):
                elsewhere.add(f"{path.relative_to(REPO)}: {text}")
    assert not elsewhere, sorted(elsewhere)
    assert {"AIGC_TRAINING", "AIGC_STOP_GRACE_S", "AIGC_CHECKPOINT_DIR"} <= declared


@pytest.fixture(scope="module")
def real():
    """(images (100, 28, 28) in [0, 1], labels (100,)) from the committed MNIST test fixture."""
    with np.load(REPO / "tests" / "data" / "mnist_test_500.npz") as npz:
        return npz["x"][:100].astype(np.float32) / 255.0, npz["y"][:100].astype(np.int64)


@pytest.fixture(scope="module")
def relabelled(tmp_path_factory):
    """A checkpoint folder whose evaluator reads every digit d as (d + 1) % 10, with the calibration that matches it.

    The features (and so the statistics) are the shipped ones; the class axis of the softmax layer and of
    the calibration's pixel model is rolled by one, and the temperature raised by half, so each file's origin shows.
    """
    import keras

    folder = tmp_path_factory.mktemp("checkpoints")
    model = keras.models.load_model(SHIPPED / settings.EVALUATOR_FILE, compile=False)
    kernel, bias = model.get_layer("probs").get_weights()
    model.get_layer("probs").set_weights([np.roll(kernel, 1, axis=1), np.roll(bias, 1)])
    model.save(folder / settings.EVALUATOR_FILE)
    shutil.copy(SHIPPED / settings.EVALUATOR_STATS_FILE, folder / settings.EVALUATOR_STATS_FILE)
    shipped = cal.load_calibration(SHIPPED / settings.CALIBRATION_FILE)
    cal.save_calibration(folder / settings.CALIBRATION_FILE, cal.Calibration(
        1.5 * shipped.temperature, np.roll(shipped.means, 1, axis=0), shipped.precision,
        np.roll(shipped.pixel_means, 1, axis=0), np.roll(shipped.pixel_components, 1, axis=0),
        shipped.thresholds, shipped.info))
    return folder


@pytest.fixture
def folder(relabelled, tmp_path, monkeypatch):
    """A fresh copy of the relabelled folder, named by $AIGC_CHECKPOINT_DIR for this test."""
    copy = tmp_path / "ckpt"
    shutil.copytree(relabelled, copy)
    monkeypatch.setenv(settings.CHECKPOINTS_ENV, str(copy))
    return copy


@needs_shipped
def test_the_evaluator_and_its_calibration_come_from_the_variables_folder(folder, real):
    from aigc.explore.reading import features_and_logits, read_images

    images, labels = real
    assert {settings.evaluator_path().parent, settings.evaluator_stats_path().parent,
            settings.calibration_path().parent} == {folder.resolve()}
    reading = read_images(images, requested=(labels + 1) % 10)
    assert reading.calibrated
    assert (reading.labels == (labels + 1) % 10).mean() > 0.97  # the folder's evaluator read them
    assert reading.doubt.mean() < 0.1 and reading.ood.mean() <= 0.03  # its calibration matches it: few flags
    _features, logits = features_and_logits(images)
    temperature = cal.load_calibration().temperature
    assert temperature == pytest.approx(1.5 * cal.load_calibration(SHIPPED / settings.CALIBRATION_FILE).temperature)
    assert np.allclose(reading.confidence, cal.softmax(logits, temperature).max(axis=1))  # calibrated confidence
    broken = read_images(blobs(40, rng=np.random.default_rng(0)))
    assert broken.ood.mean() > 0.3 and broken.doubt.mean() > 0.7  # and its flags still work


@needs_shipped
def test_no_evaluator_in_the_variables_folder_means_no_evaluator(folder):
    assert metrics.evaluator_available()
    (folder / settings.EVALUATOR_FILE).unlink()
    assert not metrics.evaluator_available()
    with pytest.raises(metrics.EvaluatorError, match="evaluator file not found"):
        metrics.load_evaluator()


@needs_shipped
def test_a_missing_calibration_is_said_not_silent(folder, real, caplog):
    from aigc.explore.reading import read_images

    (folder / settings.CALIBRATION_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="aigc.explore.calibration"):
        first = read_images(real[0][:10])
        second = read_images(real[0][:10])
    assert not first.calibrated and not second.calibrated and not first.ood.any()
    warnings = [r for r in caplog.records if "uncalibrated" in r.getMessage()]
    assert len(warnings) == 1 and settings.CALIBRATION_FILE in warnings[0].getMessage()  # once, naming the file
