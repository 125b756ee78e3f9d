"""Comparisons that don't mislead (issue 22 item 3): a train-more run continues the shipped curve, every quality figure
carries its sample count and is set beside others only on the same count (re-evaluated on demand, cached per file),
the shipped model's settings are filled in; the Model page's README says its sample count and loads the right file."""
from __future__ import annotations

import json
import shutil

import pytest

from helpers import assert_clean, run_app, texts

from aigc.engine.spec import RunSpec
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths

SHIPPED_RECIPE = {"batch_size": 32, "lr_g": 0.0007, "lr_d": 0.0007, "loss": "bce", "ema_decay": 0.999,
                  "precision": "auto", "preset": "dcgan"}


def _lines(records) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


@pytest.fixture
def shipped_and_train_more(app_env, tiny_checkpoints, tmp_path, monkeypatch):
    """Shipped weights trained 5 epochs (evaluated on 10,000 samples: FDD 2.56) and a run that trained 1 more (its
    epoch record on 2,000 samples: FDD 3.07), as the issue saw them."""
    shipped = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, shipped)
    (shipped / "generator_metrics.jsonl").write_text(_lines(
        {"kind": "epoch", "step": 100 * e, "epoch": e, "fdd": 10.0 / e, "digit_score": 9.0, "class_accuracy": 0.99,
         "epoch_time_s": 50.0} for e in range(1, 6)))
    atomic_write_json(shipped / "generator_eval.json", {"fdd": 2.5643, "digit_score": 9.95, "class_accuracy": 0.998,
                                                       "n": 10000, "card": {"epochs": 5, "recipe": SHIPPED_RECIPE}})
    monkeypatch.setenv("AIGC_CHECKPOINT_DIR", str(shipped))
    run = RunPaths(app_env / "run-more")
    atomic_write_json(run.status, {"state": "finished", "epoch": 1, "total_epochs": 1})
    run.metrics.write_text(_lines([{"kind": "epoch", "step": 1875, "epoch": 1, "fdd": 3.0678, "digit_score": 9.9,
                                    "class_accuracy": 0.997, "eval_n": 2000, "epoch_time_s": 60.0}]))
    spec = RunSpec.resolve(epochs=1, init_from=str(shipped / "generator.keras"))
    atomic_write_json(run.config, {"spec": spec.to_dict(), "base_epochs": 5})
    shutil.copy(shipped / "generator.keras", run.generator)
    return {"shipped": shipped, "run": run}


def _by_name(found):
    return {entry.name: entry for entry in found}


def test_a_train_more_run_continues_the_shipped_curve(shipped_and_train_more):
    from aigc.serve.compare import SHIPPED, compare_figure, entries

    found = _by_name(entries())
    figure = compare_figure([found[SHIPPED], found["run-more"]], "fdd")
    xs = {name: list(trace.x) for trace in figure.data for name in (SHIPPED, "run-more") if trace.name.startswith(name)}
    assert xs[SHIPPED] == [1, 2, 3, 4, 5] and xs["run-more"] == [6], xs  # not at epoch 1 beside the shipped epoch 1
    names = [trace.name for trace in figure.data]
    assert "run-more (from epoch 5), 2,000 samples" in names, names
    assert any("sample count not recorded" in name for name in names)  # the shipped log never said its count


def test_quality_figures_carry_their_counts_and_the_shipped_settings(shipped_and_train_more):
    from aigc.serve.compare import SHIPPED, counts_differ, entries, summary_rows

    found = _by_name(entries())
    rows = {row["entry"]: row for row in summary_rows([found[SHIPPED], found["run-more"]])}
    assert rows[SHIPPED]["samples"] == "10,000" and rows["run-more"]["samples"] == "2,000"
    assert rows["run-more"]["epochs"] == 6 and rows[SHIPPED]["epochs"] == 5
    assert counts_differ(list(rows.values()))
    shipped = rows[SHIPPED]
    assert (shipped["batch_size"], shipped["lr_g"], shipped["loss"]) == ("32", "0.0007", "bce")
    settings = ("batch_size", "lr_d", "ema_decay", "numeric precision")  # the float32 / bfloat16 setting, named apart
    assert shipped["init_from"] and "" not in [shipped[k] for k in settings]


def _fake_evaluation(calls):
    def evaluate_generator(generator, config, *, n, **_options):
        calls.append(n)
        return {"fdd": 3.5, "digit_score": 9.9, "class_accuracy": 0.99, "collapsed_digits": [], "collapse": False}
    return evaluate_generator


def test_the_page_offers_a_re_evaluation_on_one_count_cached_per_file(shipped_and_train_more, monkeypatch):
    from aigc.quality import metrics
    from aigc.serve import caches

    caches.EVALUATIONS.clear()
    calls = []
    monkeypatch.setattr(metrics, "evaluate_generator", _fake_evaluation(calls))
    app = run_app(view="compare")
    assert_clean(app)
    assert "different sample counts" in " ".join(texts(app, "info"))
    table = app.dataframe[0].value
    assert sorted(table["samples"]) == ["10,000", "2,000"]
    app.selectbox(key="compare_count").set_value(2000)
    app.button(key="compare_reevaluate").click().run()
    assert_clean(app)
    table = app.dataframe[0].value
    assert list(table["samples"]) == ["2,000", "2,000"] and set(table["quality from"]) == {"re-evaluated"}
    assert calls == [2000, 2000] and not any("different sample counts" in t for t in texts(app, "info"))
    other = run_app(view="compare")  # another visitor asks the same: measured once per file for the server
    other.selectbox(key="compare_count").set_value(2000)
    other.button(key="compare_reevaluate").click().run()
    assert calls == [2000, 2000]
    caches.EVALUATIONS.clear()


def test_a_forged_count_evaluates_nothing(shipped_and_train_more, monkeypatch):
    from aigc.quality import metrics

    calls = []
    monkeypatch.setattr(metrics, "evaluate_generator", _fake_evaluation(calls))
    app = run_app(view="compare")
    app.session_state["_compare_common_n"] = 10**9
    app.run()
    assert_clean(app)
    assert calls == []


def test_the_model_readme_states_its_sample_count_and_file_name(app_env, monkeypatch):
    from aigc.app.pages import model as view_model

    seen = {}
    real = view_model.readme
    monkeypatch.setattr(view_model, "readme", lambda *args, **kwargs: seen.update(kwargs) or real(*args, **kwargs))
    app = run_app(view="model")
    assert_clean(app)
    assert seen.get("filename") == "generator.keras"
    assert "sample count" in seen.get("source", "") or "samples" in seen.get("source", ""), seen
