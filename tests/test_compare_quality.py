"""Compare runs charts and tabulates improved precision and recall (issue 23 item 1): one figure with a precision and a
recall panel, each entry one colour in both and named with its sample count; the table's final figures beside FDD with
the same count, in columns named apart from the numeric-precision setting; runs logged before precision and recall
show blanks (never 0), and a re-evaluation on a common count measures them too."""
from __future__ import annotations

import json
import shutil

import pytest

from helpers import assert_clean, run_app, texts

from aigc.engine.spec import RunSpec
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths

OLD = {"fdd": 9.0, "digit_score": 9.0, "class_accuracy": 0.9}  # an epoch record from before precision and recall


def _write_run(root, name, epochs, *, eval_n=2000, base_epochs=0, generator=None):
    run = RunPaths(root / name)
    run.metrics.parent.mkdir(parents=True, exist_ok=True)
    records = [dict(kind="epoch", step=100 * e, epoch=e, eval_n=eval_n, epoch_time_s=60.0, **extra)
               for e, extra in enumerate(epochs, start=1)]
    run.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    atomic_write_json(run.config, {"spec": RunSpec.resolve(epochs=len(epochs)).to_dict(), "base_epochs": base_epochs})
    atomic_write_json(run.status, {"state": "finished", "epoch": len(epochs), "total_epochs": len(epochs)})
    if generator is not None:
        shutil.copy(generator, run.generator)
    return run


def _pr(fdd, precision, recall):
    return dict(fdd=fdd, digit_score=9.5, class_accuracy=0.98, precision=precision, recall=recall)


@pytest.fixture
def pr_runs(app_env, tiny_checkpoints):
    """run-pr: 3 epochs with precision and recall on 2,000 samples; run-old: 2 epochs logged before them."""
    generator = tiny_checkpoints / "generator.keras"
    _write_run(app_env, "run-old", [OLD, OLD], generator=generator)
    _write_run(app_env, "run-pr", [_pr(6.0, 0.70, 0.55), _pr(4.0, 0.78, 0.66), _pr(3.1, 0.83, 0.74)],
               generator=generator)
    return app_env


def _entries():
    from aigc.serve.compare import entries

    return {entry.name: entry for entry in entries()}


def test_precision_and_recall_are_two_panels_named_with_their_counts(pr_runs):
    from aigc.serve.compare import METRICS, compare_figure, not_drawn

    assert "precision_recall" in METRICS
    found = _entries()
    chosen = [found["run-pr"], found["run-old"]]
    figure = compare_figure(chosen, "precision_recall")
    assert [(t.name, t.xaxis, list(t.y)) for t in figure.data] == [
        ("run-pr, 2,000 samples", "x", [0.70, 0.78, 0.83]), ("run-pr, 2,000 samples", "x2", [0.55, 0.66, 0.74])]
    assert [t.showlegend for t in figure.data] == [True, False]  # one legend entry per run, one colour in both panels
    assert figure.data[0].line.color == figure.data[1].line.color
    panels = [a.text for a in figure.layout.annotations]
    assert panels[0].startswith("Precision") and panels[1].startswith("Recall"), panels
    assert list(figure.layout.yaxis.range) == list(figure.layout.yaxis2.range) == [0.0, 1.02]  # a share, on 0-1
    assert not_drawn(chosen, "precision_recall") == ["run-old"]  # said, not drawn at 0
    assert not_drawn(chosen, "fdd") == []
    assert compare_figure([found["run-old"]], "precision_recall") is None


def test_the_table_has_final_precision_and_recall_beside_fdd_and_blanks_for_old_runs(pr_runs):
    from aigc.serve.compare import summary_rows

    found = _entries()
    rows = {row["entry"]: row for row in summary_rows([found["run-pr"], found["run-old"]])}
    new, old = rows["run-pr"], rows["run-old"]
    assert (new["precision (P&R)"], new["recall (P&R)"], new["fdd"], new["samples"]) == (0.83, 0.74, 3.1, "2,000")
    assert old["precision (P&R)"] is None and old["recall (P&R)"] is None and old["fdd"] == 9.0  # blank, never 0
    assert new["numeric precision"] in {"auto", "float32", "mixed_bfloat16"} and "precision" not in new
    columns = list(new)
    assert columns.index("fdd") < columns.index("precision (P&R)") < columns.index("recall (P&R)") < \
        columns.index("quality from")


def test_an_evaluation_says_when_precision_and_recall_used_fewer_samples(tmp_path):
    from aigc.serve.compare import Entry, counts_differ, summary_rows

    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("")
    big = Entry("big", metrics, (), {}, {"fdd": 1.9, "precision": 0.81, "recall": 0.8, "n": 20000, "pr_n": 10000})
    same = Entry("same", metrics, (), {}, {"fdd": 2.5, "precision": 0.81, "recall": 0.8, "n": 10000, "pr_n": 10000})
    rows = summary_rows([big, same])
    assert [row["samples"] for row in rows] == ["20,000 (P&R on 10,000)", "10,000"]
    assert rows[0]["precision (P&R)"] == 0.81 and counts_differ(rows)
    only_pr = Entry("pr-only", metrics, (), {}, {"precision": 0.7, "recall": 0.6})  # no FDD: still counted as measured
    assert counts_differ(summary_rows([only_pr, same]))


def test_the_page_offers_precision_and_recall_and_draws_them(pr_runs):
    app = run_app(view="compare")
    assert_clean(app)
    chooser = app.selectbox(key="compare_metric")
    assert "precision_recall" in chooser.options or "Precision and recall (k = 3, 0-1, higher is better)" in \
        chooser.options, chooser.options
    chooser.set_value("precision_recall").run()
    assert_clean(app)
    charts = app.get("plotly_chart")
    assert len(charts) == 1
    figure = json.loads(charts[0].proto.spec)
    assert {trace["name"] for trace in figure["data"]} == {"run-pr, 2,000 samples"}
    captions = " ".join(texts(app, "caption"))
    assert "Not measured per epoch (no curve): run-old" in captions and "Recall" in captions
    table = app.dataframe[0].value
    by_entry = table.set_index("entry")
    assert by_entry.loc["run-pr", "precision (P&R)"] == 0.83 and by_entry.loc["run-pr", "recall (P&R)"] == 0.74
    assert table.set_index("entry")["precision (P&R)"].isna()["run-old"]  # a blank cell, not 0


def test_a_re_evaluation_on_one_count_measures_precision_and_recall_too(pr_runs, tiny_checkpoints, monkeypatch):
    from aigc.quality import metrics
    from aigc.serve import caches

    _write_run(pr_runs, "run-1k", [_pr(7.0, 0.6, 0.5)], eval_n=1000,  # another count: a re-evaluation is offered
               generator=tiny_checkpoints / "generator.keras")
    caches.EVALUATIONS.clear()
    calls = []

    def evaluate_generator(generator, config, *, n, **_options):
        calls.append(n)
        return {"fdd": 3.5, "digit_score": 9.9, "class_accuracy": 0.99, "precision": 0.8123, "recall": 0.7987,
                "pr_n": n, "collapsed_digits": [], "collapse": False}

    monkeypatch.setattr(metrics, "evaluate_generator", evaluate_generator)
    app = run_app(view="compare")
    assert "different sample counts" in " ".join(texts(app, "info"))
    app.selectbox(key="compare_count").set_value(2000)
    app.button(key="compare_reevaluate").click().run()
    assert_clean(app)
    table = app.dataframe[0].value
    assert set(table["samples"]) == {"2,000"} and set(table["quality from"]) == {"re-evaluated"}
    assert set(table["precision (P&R)"]) == {0.8123} and set(table["recall (P&R)"]) == {0.7987}
    assert calls == [2000] * len(table)
    caches.EVALUATIONS.clear()
