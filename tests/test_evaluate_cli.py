"""`python -m aigc eval`: one-line errors, a JSON report, and the evaluator retraining path on fake data."""
import json

import numpy as np
import pytest

from aigc.quality import metrics
from aigc.cli import main
from helpers import save_untrained_generator

needs_evaluator = pytest.mark.skipif(not metrics.evaluator_available(), reason="shipped evaluator missing")


def run(capsys, *argv):
    """(exit code, stdout, stderr) of an in-process `python -m aigc eval ARGV`."""
    try:
        code = main(["eval", *argv])
    except SystemExit as exit_:  # argparse rejects bad values this way
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def seed_checkpoint(tmp_path_factory):
    """An untrained 'seed' generator file (unconditional, latent 16)."""
    return save_untrained_generator(tmp_path_factory.mktemp("ckpt") / "generator.keras", preset="seed", latent_dim=16)


def test_missing_checkpoint_is_one_line(capsys, tmp_path):
    code, out, err = run(capsys, "--checkpoint", str(tmp_path / "nope.keras"))
    assert code == 2 and err.startswith("error:") and "checkpoint not found" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_invalid_checkpoint_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_text("hello")
    code, _out, err = run(capsys, "--checkpoint", str(bad))
    assert code == 2 and "not an aigc generator" in err and "Traceback" not in err


@pytest.mark.parametrize("n", ["0", "5", "1000000", "many"])
def test_n_out_of_range(capsys, n):
    code, _out, err = run(capsys, "--n", n)
    assert code == 2 and "--n" in err and "Traceback" not in err


def test_missing_evaluator_is_one_line(capsys, tmp_path, seed_checkpoint):
    code, _out, err = run(capsys, "--checkpoint", str(seed_checkpoint), "--evaluator", str(tmp_path / "none.keras"))
    assert code == 2 and "evaluator file not found" in err and "--train-evaluator" in err


def test_bad_data_for_training_is_one_line(capsys, tmp_path):
    code, _out, err = run(capsys, "--train-evaluator", "--data", str(tmp_path / "missing.npz"),
                          "--evaluator", str(tmp_path / "e.keras"), "--stats", str(tmp_path / "e.npz"))
    assert code == 2 and "MNIST file not found" in err and "Traceback" not in err


@needs_evaluator
def test_json_report(capsys, seed_checkpoint):
    code, out, err = run(capsys, "--checkpoint", str(seed_checkpoint), "--n", "100", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 100 and result["class_accuracy"] is None and len(result["class_histogram"]) == 10
    assert set(result["ladder"]) == set(metrics.LADDER_NAMES) and result["fdd"] > result["fdd_floor"]
    # Precision and recall against as many test images as samples; per digit: FDD (by the evaluator's reading, as
    # this generator takes no label; None for a digit it never draws) and recall.
    assert result["pr_n"] == 100 and result["pr_k"] == 3
    assert 0 <= result["precision"] <= 1 and 0 <= result["recall"] <= 1
    assert len(result["per_class_recall"]) == 10 and len(result["per_class_fdd"]) == 10
    assert set(result["pr_ladder"]) == set(metrics.LADDER_NAMES)


@pytest.mark.parametrize("scale", ["0", "2.5", "nan", "wide"])
def test_latent_scale_out_of_range_is_one_line(capsys, scale):
    code, _out, err = run(capsys, "--latent-scale", scale)
    assert code == 2 and "--latent-scale" in err and "between 0.1 and 2.0" in err and "Traceback" not in err


@needs_evaluator
def test_the_latent_scale_is_the_served_truncation_and_is_recorded(capsys, seed_checkpoint):
    """--latent-scale multiplies the latents as the Generate page's slider does: scale 1 is the default, the JSON
    records the scale, and a scaled draw is a different sample of the same generator."""
    figures = {}
    for argv in ((), ("--latent-scale", "1"), ("--latent-scale", "1.5")):
        code, out, err = run(capsys, "--checkpoint", str(seed_checkpoint), "--n", "60", "--json", *argv)
        assert code == 0, err
        result = json.loads(out)
        figures[argv[-1] if argv else "default"] = (result["latent_scale"], result["fdd"])
    assert figures["default"] == figures["1"] and figures["default"][0] == 1.0
    assert figures["1.5"][0] == 1.5 and figures["1.5"][1] != figures["1"][1]
    code, out, _err = run(capsys, "--checkpoint", str(seed_checkpoint), "--n", "50", "--latent-scale", "0.8")
    assert code == 0 and "(seed 0, latent scale 0.8)" in out


@needs_evaluator
def test_text_report_shows_the_ladder(capsys, seed_checkpoint):
    code, out, _err = run(capsys, "--checkpoint", str(seed_checkpoint), "--n", "50")
    assert code == 0
    assert "FDD" in out and "ladder" in out and "floor" in out and "digit score" in out
    precision = next(line for line in out.splitlines() if line.startswith("precision"))
    assert "50 samples vs 50 MNIST test images, k = 3" in precision and "real vs real" not in precision, out
    assert "recall/digit" in out and "the ladder's are on 10,000" in out


def test_precision_and_recall_sit_beside_their_ceiling_on_the_ladders_count():
    from aigc.cli.eval import format_report

    result = dict(checkpoint="g.keras", n=10_000, seed=0, fdd=2.5, ladder={"floor": 0.7}, ladder_n=10_000,
                  digit_score=9.9, class_histogram=[1000] * 10, collapse_warning=None, precision=0.8, recall=0.7,
                  pr_n=10_000, pr_k=3, pr_ladder={"floor": {"precision": 0.88, "recall": 0.9}},
                  per_class_recall=[0.7] * 10, per_class_fdd=[3.0] * 10)
    lines = format_report(result).splitlines()
    assert any(line.startswith("precision      0.800 on 10,000 samples") and "real vs real: 0.880" in line
               for line in lines), lines
    assert any(line.startswith("recall         0.700") and "real vs real: 0.900" in line for line in lines), lines
    old_stats = format_report(dict(result, precision=None, recall=None, pr_n=None, pr_ladder={}))
    assert "precision      n/a" in old_stats and "--ladder" in old_stats


@pytest.mark.slow
def test_train_evaluator_on_synthetic_data(capsys, tmp_path, synthetic_npz):
    model_path, stats_path = tmp_path / "evaluator.keras", tmp_path / "stats.npz"
    code, out, err = run(capsys, "--train-evaluator", "--data", str(synthetic_npz), "--epochs", "1",
                         "--evaluator", str(model_path), "--stats", str(stats_path))
    assert code == 0, err
    assert "ladder:" in out and model_path.is_file() and stats_path.is_file()
    evaluator = metrics.load_evaluator(model_path, stats_path)
    assert evaluator.mu.shape == (128,) and evaluator.sigma.shape == (128, 128)
    assert list(evaluator.ladder) == list(metrics.LADDER_NAMES)
    assert all(np.isfinite(v) for v in evaluator.ladder.values())
    assert 0.0 <= evaluator.info["test_accuracy"] <= 1.0
    code, out, err = run(capsys, "--ladder", "--data", str(synthetic_npz),
                         "--evaluator", str(model_path), "--stats", str(stats_path))
    assert code == 0 and "ladder:" in out, err
