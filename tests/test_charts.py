"""Charts that don't mislead: fixed ranges for bounded metrics, integer epoch ticks, one-point ranges, units, toolbar."""
from __future__ import annotations

import json

import numpy as np

from aigc.serve import charts
from aigc.serve.compare import Entry, compare_figure, curve, summary_rows


def epoch_records(epochs, **values):
    return [{"kind": "epoch", "step": 10 * e, "epoch": e, "epoch_time_s": 60.0,
             **{k: v(e) if callable(v) else v for k, v in values.items()}} for e in epochs]


def test_bounded_quality_metrics_have_fixed_axes_and_integer_epoch_ticks():
    figure = charts.quality_figure(epoch_records([1, 2, 3], fdd=lambda e: 30 / e, digit_score=lambda e: 5 + e,
                                                 class_accuracy=lambda e: 0.3 * e))
    layout = figure.layout
    assert list(layout.yaxis2.range) == [1.0, 10.2] and list(layout.yaxis3.range) == [0.0, 1.02]
    assert layout.yaxis.range[0] == 0 and layout.yaxis.range[1] >= 30  # FDD from 0, the data inside
    for axis in (layout.xaxis, layout.xaxis2, layout.xaxis3):
        assert axis.tickformat == "d" and axis.dtick == 1 and axis.title.text == "epoch"
    assert all(axis.title.text for axis in (layout.yaxis, layout.yaxis2, layout.yaxis3))  # units on every axis


def test_one_point_gets_a_sensible_window():
    figure = charts.quality_figure(epoch_records([1], class_accuracy=1.0))
    assert list(figure.layout.xaxis.range) == [0.0, 2.0] and list(figure.layout.yaxis.range) == [0.0, 1.02]
    loss = charts.loss_figure([{"kind": "step", "step": 5, "epoch": 1, "g_loss": 1.0, "d_loss": 1.2}])
    assert list(loss.layout.xaxis.range) == [4, 6]


def test_first_epoch_checks_draw_before_any_epoch_ends():
    probes = [{"kind": "probe", "epoch": e, "step": int(e * 100), "class_accuracy": 0.5 + e / 3, "fdd": 300 * (1 - e)}
              for e in (0.25, 0.5, 0.75)]
    figure = charts.quality_figure(probes)
    assert figure is not None and [list(t.x) for t in figure.data][:1] == [[0.25, 0.5, 0.75]]
    assert figure.layout.xaxis.range[0] == 0.0 and figure.layout.xaxis.range[1] >= 0.75
    both = charts.quality_figure(probes + epoch_records([1, 2], class_accuracy=0.9, fdd=40.0))
    names = {trace.name for trace in both.data}
    assert {"quick checks (500 samples)", "end of epoch (sample count not recorded)"} <= names
    assert max(both.layout.xaxis.range) >= 2 and min(both.layout.xaxis.range) == 0.0


def test_many_epochs_keep_about_ten_whole_ticks():
    axis = charts.epoch_axis(list(range(1, 101)))
    assert axis["dtick"] == 10 and axis["tickformat"] == "d"


def test_loss_and_probability_axes_say_their_units_and_the_toolbar_stays_clear():
    records = [{"kind": "step", "step": s, "epoch": 1, "g_loss": 1.0, "d_loss": 1.2, "d_real": 0.6, "d_fake": 0.4}
               for s in (2, 4)]
    for figure in (charts.loss_figure(records), charts.probability_figure(records)):
        assert "(" in figure.layout.yaxis.title.text and "step" in figure.layout.xaxis.title.text
        assert figure.layout.modebar.orientation == "v" and figure.layout.title.x == 0  # title left, bar right
    assert list(charts.probability_figure(records).layout.yaxis.range) == [0, 1]


def test_compare_curves_on_epochs_or_training_time(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps(r) + "\n" for r in epoch_records([1, 2], fdd=lambda e: 10 / e)))
    assert curve(json_lines(metrics), "fdd") == ([1.0, 2.0], [10.0, 5.0])
    assert curve(json_lines(metrics), "fdd", axis="time") == ([1.0, 2.0], [10.0, 5.0])  # 60 s per epoch
    entries = [Entry("a", metrics, (), {"batch_size": 64}, {}), Entry("b", metrics, (), {}, {"fdd": 4.2})]
    figure = compare_figure(entries, "fdd", axis="time")
    assert [trace.name for trace in figure.data] == ["a, sample count not recorded", "b, sample count not recorded"]
    assert "minutes" in figure.layout.xaxis.title.text
    rows = summary_rows(entries)
    assert rows[0]["fdd"] == 5.0 and rows[1]["fdd"] == 4.2 and rows[0]["batch_size"] == "64"
    assert rows[0]["training time (min)"] == 2.0 and rows[0]["epochs"] == 2
    assert compare_figure(entries, "digit_score") is None


def json_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_figure_is_valid_plotly_and_keeps_its_dict_for_every_session():
    """The figures skip plotly's validation while built (it cost ~20 ms a figure, per change of a watched run), so this
    validates each kind; the plain dict is made once and handed to every session (issue 21: ~50 ms per poll before)."""
    import plotly.graph_objects as go

    steps = [{"kind": "step", "step": s, "epoch": 1 + s // 10, "g_loss": 1.0, "d_loss": 1.2, "d_real": 0.6,
              "d_fake": 0.4} for s in range(2, 31, 2)]
    records = steps + epoch_records([1, 2, 3], fdd=lambda e: 30 / e, digit_score=9.0, class_accuracy=0.9, g_loss=1.0,
                                    d_loss=1.2, d_real=0.6, d_fake=0.4)
    records.append({"kind": "probe", "epoch": 0.5, "fdd": 9.0, "class_accuracy": 0.5})
    for make in (charts.loss_figure, charts.probability_figure, charts.quality_figure):
        figure = make(records)
        plain = figure.to_dict()
        go.Figure(plain)  # raises on any property plotly does not know
        assert figure.to_dict() is plain


def test_a_figure_remake_costs_the_points_drawn_not_the_runs_length(monkeypatch):
    """Issue 21: remaking a 10,000-epoch run's figures validated every record (~110 ms, on every new record), where
    a chart draws at most MAX_CHART_POINTS of each kind."""
    from aigc.app.pages.train import run_figures

    def records(epochs: int) -> list[dict]:
        out = []
        for epoch in range(1, epochs + 1):
            out.append({"kind": "step", "epoch": epoch, "step": 20 * epoch - 10, "g_loss": 1.0, "d_loss": 1.2,
                        "d_real": 0.6, "d_fake": 0.4})
            out.append({"kind": "epoch", "epoch": epoch, "step": 20 * epoch, "g_loss": 1.1, "d_loss": 1.2,
                        "d_real": 0.6, "d_fake": 0.4, "fdd": 2.0 + 30 / epoch, "class_accuracy": 0.99,
                        "digit_score": 9.9, "precision": 0.8, "recall": 0.8, "eval_n": 2000})
        return out

    calls = []
    real = charts.finite_number
    monkeypatch.setattr(charts, "finite_number", lambda value: calls.append(1) or real(value))
    work = {}
    for epochs in (2 * charts.MAX_CHART_POINTS, 20 * charts.MAX_CHART_POINTS):
        calls.clear()
        figures = run_figures(charts.ChartRecords.of(records(epochs)))
        work[epochs] = len(calls)
        loss = figures["loss"].to_dict()["data"]
        assert all(len(trace["x"]["bdata"]) > 0 for trace in loss)
    small, big = work.values()
    assert big <= 1.1 * small  # 10x the records, the same work


def test_chart_steps_travel_as_int32_unless_a_step_needs_more():
    assert charts.steps_of([{"step": 20}, {"step": 2**31 - 1}]).dtype == np.int32
    assert charts.steps_of([{"step": 20}, {"step": 2**31}]).tolist() == [20, 2**31]
