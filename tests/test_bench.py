"""The benchmark's structure, the reference's shapes and the FLOP counter; ratios checked on a fake clock."""
import argparse
import json
import time
import types

import numpy as np
import pytest

from aigc.bench import main as bench
from aigc.bench import flops as bench_flops
from aigc.bench import reference
from aigc.bench import report as bench_report
from aigc.engine.data import synthetic_mnist


def test_reference_models_have_the_tutorial_shapes():
    generator = reference.make_generator_model()
    discriminator = reference.make_discriminator_model()
    images = generator(np.zeros((3, reference.NOISE_DIM), np.float32), training=False)
    assert images.shape == (3, 28, 28, 1)
    assert float(np.min(images)) >= -1 and float(np.max(images)) <= 1
    assert discriminator(images, training=False).shape == (3, 1)
    assert generator.count_params() == 2_330_944  # the tutorial's model.summary()
    assert discriminator.count_params() == 212_865


def test_reference_train_step_is_finite():
    gan = reference.ReferenceGAN(batch_size=8)
    data = reference.make_dataset(synthetic_mnist(16, 1)["x_train"], batch_size=8)
    gen_loss, disc_loss = gan.train_step(next(iter(data)))
    assert np.isfinite(float(gen_loss)) and np.isfinite(float(disc_loss))


def test_flop_count_is_analytic():
    generator = reference.make_generator_model()
    # Dense 100x12544, ConvT 7x7x(5x5x256x128), ConvT 7x7x(5x5x128x64), ConvT 14x14x(5x5x64x1); 2 FLOPs per MAC.
    expected = 2 * (100 * 12544 + 49 * 25 * 256 * 128 + 49 * 25 * 128 * 64 + 196 * 25 * 64)
    assert bench_flops.forward_flops(generator) == expected
    disc = reference.make_discriminator_model()
    assert bench_flops.forward_flops(disc) == 2 * (196 * 25 * 64 + 49 * 25 * 64 * 128 + 6272)
    assert bench_flops.train_flops(generator, disc) == 3 * (expected + 2 * bench_flops.forward_flops(disc))


@pytest.mark.slow
def test_interleaved_throughput_on_tiny_data_reports_ratios():
    arrays = synthetic_mnist(64, 1)
    result = bench.throughput(arrays["x_train"], arrays["y_train"], batch=16, rounds=2, steps=1)
    names = [row["name"] for row in result["rows"]]
    assert names[0].startswith("default") and names[1].startswith("reference")
    for row in result["rows"]:
        assert row["img_per_s"] > 0 and row["min"] <= row["img_per_s"] <= row["max"]
    assert len(result["rows"][0]["ratios"]) == 2


def test_ratios_compare_runners_round_by_round(monkeypatch):
    """Fake runners on a fake clock, one twice as fast per image: the ratio is exactly 2, whatever the load."""
    clock = [0.0]

    def runner(seconds_per_step):
        def run(steps):
            clock[0] += seconds_per_step * steps
        return run

    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    monkeypatch.setattr(bench, "default_runner", lambda x, y, batch, **_: (None, runner(0.004)))
    monkeypatch.setattr(bench, "reference_runner", lambda x, batch: (None, runner(0.008)))
    result = bench.throughput(None, None, batch=16, rounds=3, steps=5)
    default, reference = result["rows"]
    assert default["ratio_vs_reference"] == pytest.approx(2.0) and default["ratios"] == [2.0, 2.0, 2.0]
    assert default["img_per_s"] == pytest.approx(4000) and reference["img_per_s"] == pytest.approx(2000)


def test_latency_section_covers_sizes_and_methods():
    result = bench.latency(checkpoint=None, repeats=2, sizes=(1, 4))
    methods = {row["method"] for row in result["rows"]}
    assert {"aigc.engine.sampling.generate", "model(z) eager", "model.predict"} <= methods
    assert {row["n"] for row in result["rows"]} == {1, 4}
    assert all(row["median_ms"] > 0 and row["p95_ms"] > 0 for row in result["rows"])


def test_cli_tiny_run_writes_a_table_and_json(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    out = tmp_path / "bench.json"
    args = parser.parse_args(["--tiny", "--only", "flops,quality", "--json", str(out)])
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    assert "Compute per image" in printed and "Time to quality" in printed
    results = json.loads(out.read_text())
    assert results["mode"] == "tiny" and results["data"] == "synthetic"
    assert set(results["flops"]["models"]) == {"default", "reference"}
    assert "skipped" in results["quality"]  # synthetic data never claims a quality number


def test_unknown_section_is_a_one_line_error(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    assert bench.main(parser.parse_args(["--tiny", "--only", "nope"])) == 2
    assert "unknown section" in capsys.readouterr().err


def test_match_time_uses_the_reference_best_fdd():
    curves = {"reference": [{"train_s": 10, "fdd": 80.0}, {"train_s": 20, "fdd": 60.0}, {"train_s": 30, "fdd": 90.0}],
              "default (raw generator)": [{"train_s": 10, "fdd": 70.0}, {"train_s": 20, "fdd": 55.0}],
              "default (EMA, served)": [{"train_s": 10, "fdd": 99.0}, {"train_s": 20, "fdd": 65.0}]}
    matched = bench._match_time(curves)
    assert matched == {"reference_best_fdd": 60.0, "default (raw generator)": 20, "default (EMA, served)": None}


def test_browser_section_renders_without_a_browser():
    from aigc.bench.browser import render_browser

    result = {"cold_start_s (app)": 9.5, "idle": {"app": {"median_ms": 150.0, "p95_ms": 200.0, "n": 5},
                                                  "trivial page": {"median_ms": 100.0, "p95_ms": 120.0, "n": 5}},
              "peak_rss_mb": {"app server": 700.0}}
    text = render_browser(result)
    assert "1.50x" in text and "cold_start_s (app): 9.5" in text and "app server: 700 MB" in text


def test_reference_budget_lets_the_tutorial_train_on_alone(monkeypatch):
    """--reference-budget: the default stops at its budget, the tutorial keeps training and being evaluated."""
    from types import SimpleNamespace

    from aigc.quality import metrics

    steps = {"default": 0, "reference": 0}

    def runner(name):
        def run(n):
            steps[name] += n
            time.sleep(0.005)
        return run

    fake_gan = SimpleNamespace(serving_generator="ema", generator="raw", config=None)
    monkeypatch.setattr(metrics, "evaluator_available", lambda: True)
    monkeypatch.setattr(bench, "default_runner", lambda *a, **k: (fake_gan, runner("default")))
    monkeypatch.setattr(bench, "reference_runner", lambda *a, **k: (SimpleNamespace(generator="ref"), runner("reference")))
    monkeypatch.setattr(bench, "_evaluate", lambda generator, config, n: {"fdd": 100.0 if generator == "ref" else 50.0})
    x = np.zeros((1000, 28, 28), np.float32)
    result = bench.time_to_quality(x, np.zeros(1000, int), budget_s=0.1, interval_s=0.05, eval_n=10,
                                   reference_budget_s=0.3)
    curves = result["curves"]
    assert len(curves["default (EMA, served)"]) == 2 and len(curves["reference"]) == 6
    assert curves["reference"][-1]["train_s"] >= 0.3 - 1e-6 > curves["default (raw generator)"][-1]["train_s"]
    assert result["reference_budget_s"] == 0.3 and result["default_matches_reference_at_s"]["reference_best_fdd"] == 100
    assert "the reference" in bench_report.render_quality(result)  # the unequal budgets are said
