"""Plotly figures of a run's metrics.jsonl (pure functions: records in, figures out, no Streamlit).

Charts that don't mislead: bounded metrics on fixed axes (class accuracy 0-1, digit score 1-10),
integer epoch ticks, sensible ranges around a single point, units on every axis, and the plotly
toolbar upright at the right, clear of the left-aligned titles.
"""
from __future__ import annotations

import copy
import functools
import math
import operator
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from aigc.runs.files import finite_number

SMOOTHING = 0.8  # EMA weight of the smoothed loss curves
LOSS_SERIES = (("g_loss", "G loss", "#d62728"), ("d_loss", "D loss", "#1f77b4"))
PROB_SERIES = (("d_real", "D(x): real judged real", "#2ca02c"), ("d_fake", "D(G(z)): fake judged real", "#ff7f0e"))
# key, panel title, axis title (with units), fixed range (None: from 0 to the data)
QUALITY_SERIES = (("fdd", "Frechet digit distance (lower is better)", "FDD (evaluator feature units)", None),
                  ("digit_score", "Digit score (max 10)", "digit score (1-10)", (1.0, 10.0)),
                  ("class_accuracy", "Class accuracy", "share read as asked (0-1)", (0.0, 1.0)),
                  ("precision", "Precision (realistic share)", "share (0-1)", (0.0, 1.0)),
                  ("recall", "Recall (covered share)", "share (0-1)", (0.0, 1.0)))
PROBE_SAMPLES = 500  # a first-epoch quick check's samples before probe records carried eval_n (engine/epoch_loop.py)
QUICK_STYLE = dict(line=dict(color="#9ecae1", dash="dot"), marker=dict(size=5))  # fewer samples: drawn lighter
EPOCH_COLORS = ("#1f77b4", "#9467bd", "#8c564b", "#e377c2")  # end-of-epoch series, one per sample count
QUALITY_RANGES = {key: fixed for key, _title, _axis, fixed in QUALITY_SERIES}
CHART_HEIGHT = 360
PANELS_PER_ROW = 3  # quality panels side by side; precision and recall (when recorded) start a second row
STEP_TITLE = "training step (one batch)"
EPOCH_TITLE = "epoch"
# Per curve: a chart is at most ~1,300 px wide (the quality row; the loss charts ~650). More points add bytes and
# server CPU to every live poll, not anything a reader can see: 2,000 cost a watcher's poll ~2 ms more (bench --page-costs).
MAX_CHART_POINTS = 1000
MODEBAR = dict(orientation="v", remove=["lasso2d", "select2d", "autoScale2d"])


def series(values) -> np.ndarray:
    """A chart series as float32, None as NaN (a gap): numpy arrays travel to the page as compact typed arrays and
    cost plotly almost nothing to copy and encode, where lists of Python floats cost ~10x more on every poll."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float32)


def steps_of(records: list) -> np.ndarray:
    """The records' global steps, exact: int32 (half the bytes on every poll) unless a step is past its range."""
    steps = np.array([r["step"] for r in records], dtype=np.int64)
    return steps.astype(np.int32) if steps.size and -2**31 <= steps.min() and steps.max() < 2**31 else steps


class PreparedFigure(go.Figure):
    """A finished figure whose plain dict is made once (built from plain dicts without plotly's validation, which
    cost ~20 ms a figure; tests/test_charts.py validates every kind of figure instead).

    st.plotly_chart calls to_dict() on every render: for a shared, cached figure that is every poll of
    every watching session, each a deep copy and base64 pass over every trace. Here the first call's
    dict is kept and handed out again (read-only by convention: nothing may change a cached figure).
    """

    def to_dict(self) -> dict:
        prepared = self.__dict__.get("_prepared")
        if prepared is None:
            prepared = self.__dict__["_prepared"] = super().to_dict()
        return prepared


@dataclass(frozen=True)
class ChartRecords:
    """A run's records split once for its charts: step and epoch records by global step (thinned), probes by epoch."""

    steps: list
    epochs: list
    probes: list
    collapsed: list | None = None

    @classmethod
    def of(cls, records) -> ChartRecords:
        if isinstance(records, cls):
            return records
        by_kind = _by_kind(records, ("step", "epoch", "probe"))  # each kind thinned before its values are read
        steps, epochs = (_by_step(thin(by_kind[kind])) for kind in ("step", "epoch"))
        probes = sorted(thin(by_kind["probe"]), key=lambda r: finite_number(r.get("epoch")) or 0)
        return cls(steps, epochs, probes, _collapsed(epochs))


def thin(rows: list, max_points: int = MAX_CHART_POINTS) -> list:
    """At most about max_points rows, evenly spaced, the last one always kept (what a chart can show of a long run)."""
    if len(rows) <= max_points:
        return rows
    stride = math.ceil(len(rows) / max_points)
    kept = rows[::stride]
    return kept if kept[-1] is rows[-1] else kept + [rows[-1]]


def _by_kind(records, kinds: tuple[str, ...]) -> dict[str, list]:
    """{kind: its records in order} for the given kinds, in one pass (a long run's snapshot holds ~14k records)."""
    by_kind: dict[str, list] = {kind: [] for kind in kinds}
    for record in records:
        rows = by_kind.get(record.get("kind"))
        if rows is not None:
            rows.append(record)
    return by_kind


def _by_step(rows: list) -> list:
    """rows with a finite global step, sorted by it."""
    return sorted((r for r in rows if finite_number(r.get("step")) is not None), key=operator.itemgetter("step"))


def split_records(records, *, max_points: int | None = None) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records), each sorted by global step; thinned to max_points each when given (charts)."""
    by_kind = _by_kind(records, ("step", "epoch"))
    steps, epochs = (_by_step(by_kind[kind]) for kind in ("step", "epoch"))
    return (steps, epochs) if max_points is None else (thin(steps, max_points), thin(epochs, max_points))


def smooth(values: list[float | None], *, weight: float = SMOOTHING) -> list[float | None]:
    """Exponential moving average with bias correction, skipping gaps (None)."""
    out, average, count = [], 0.0, 0
    for value in values:
        if value is None:
            out.append(None)
            continue
        count += 1
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight ** count))
    return out


def loss_figure(records) -> go.Figure:
    """G and D loss against the global step: raw (thin), smoothed (thick), per-epoch means (markers)."""
    return _series_figure(records, LOSS_SERIES, title="Losses (dcgan's include its class and R1 terms)",
                          y_title="loss (nats)")


def probability_figure(records) -> go.Figure:
    """D(x) and D(G(z)) against the global step (0.5 each when the game is balanced)."""
    return _series_figure(records, PROB_SERIES, title="Discriminator outputs", y_title="mean probability (0-1)",
                          y_range=[0, 1])


def _series_figure(records, lines, *, title: str, y_title: str, y_range: list | None = None) -> go.Figure:
    data = ChartRecords.of(records)
    steps, epochs = data.steps, data.epochs
    traces, x = [], steps_of(steps)
    for key, label, color in lines:
        y = [finite_number(r.get(key)) for r in steps]
        if any(v is not None for v in y):
            traces.append(dict(type="scatter", x=x, y=series(y), name=f"{label} (raw)", mode="lines", opacity=0.35,
                               line=dict(color=color, width=1), legendgroup=key, showlegend=False))
            traces.append(dict(type="scatter", x=x, y=series(smooth(y)), name=label, mode="lines", legendgroup=key,
                               line=dict(color=color, width=2.5)))
        points = [r for r in epochs if finite_number(r.get(key)) is not None]
        if points:
            traces.append(dict(type="scatter", x=steps_of(points), y=series(r[key] for r in points),
                               name=f"{label} (epoch mean)", mode="markers", legendgroup=key,
                               showlegend=not any(v is not None for v in y),
                               marker=dict(color=color, size=9, symbol="diamond", line=dict(color="white", width=1)),
                               customdata=np.array([finite_number(r.get("epoch")) or 0 for r in points], np.int32),
                               hovertemplate="epoch %{customdata}: %{y:.4f}<extra></extra>"))
    layout = _layout(title=f"{title}<br><sup>thin: raw, thick: smoothed, diamonds: epoch means</sup>",
                     x_title=STEP_TITLE, y_title=y_title)
    xs = sorted({r["step"] for r in steps + epochs})
    if len(xs) == 1:  # one point: a window around it, not plotly's -1..6 guess
        layout["xaxis"]["range"] = [max(0, xs[0] - 1), xs[0] + 1]
    if y_range is not None:
        layout["yaxis"]["range"] = y_range
    return PreparedFigure(dict(data=traces, layout=layout), _validate=False)


def samples_label(count) -> str:
    """'2,000 samples' ('sample count not recorded' when unknown): a quality figure is comparable only on its count."""
    number = finite_number(count)
    return f"{int(number):,} samples" if number else "sample count not recorded"


def quality_series(data: ChartRecords, key: str, *, eval_n: int | None = None) -> list[tuple[str, dict, list]]:
    """[(legend name, style, [(epoch, value)])] of one metric: the quick checks, then end-of-epoch evaluations, one
    series per sample count (a count changed by a resume is a new series, never one line across counts)."""
    found = []
    for rows, kind, fallback in ((data.probes, "quick checks", PROBE_SAMPLES), (data.epochs, "end of epoch", eval_n)):
        by_count: dict = {}
        for row in rows:
            epoch, value = finite_number(row.get("epoch")), finite_number(row.get(key))
            if epoch is not None and value is not None:
                by_count.setdefault(finite_number(row.get("eval_n")) or fallback, []).append((epoch, value))
        for index, (count, points) in enumerate(by_count.items()):
            style = QUICK_STYLE if kind == "quick checks" else dict(line=dict(color=EPOCH_COLORS[index % 4]))
            found.append((f"{kind} ({samples_label(count)})", style, points))
    return found


def quality_figure(records, *, eval_n: int | None = None) -> go.Figure | None:
    """Per-epoch quality (FDD, digit score, class accuracy; precision and recall when recorded) side by side, or None.

    Quick checks and end-of-epoch evaluations are separate series named with their sample counts (eval_n: the
    run spec's count, for epoch records written before they carried their own)."""
    data = ChartRecords.of(records)
    panels = [(key, label, axis, found) for key, label, axis, _fixed in QUALITY_SERIES
              if (found := quality_series(data, key, eval_n=eval_n))]
    if not panels:
        return None
    # One panel per metric: their scales differ by orders of magnitude.
    layout = subplot_row(tuple(label for _k, label, *_rest in panels))
    traces, named = [], set()
    for column, (key, label, axis, found) in enumerate(panels, start=1):
        suffix = "" if column == 1 else str(column)
        for name, style, points in found:
            traces.append(dict(type="scatter", x=series(p[0] for p in points), y=series(p[1] for p in points),
                               mode="lines+markers", name=name, legendgroup=name, showlegend=name not in named,
                               xaxis=f"x{suffix}", yaxis=f"y{suffix}", **style))
            named.add(name)
        points = [p for _name, _style, found_points in found for p in found_points]
        quick = any(name.startswith("quick") for name, *_ in found)
        layout[f"xaxis{suffix}"].update(title=dict(text=EPOCH_TITLE),
                                        **epoch_axis([p[0] for p in points] + ([0.0] if quick else [])))
        layout[f"yaxis{suffix}"].update(title=dict(text=axis), range=value_range(key, [p[1] for p in points]))
    rows = math.ceil(len(panels) / PANELS_PER_ROW)
    layout.update(height=CHART_HEIGHT + (rows - 1) * (CHART_HEIGHT - 60), margin=dict(l=10, r=50, t=40, b=10),
                  uirevision="keep", modebar=MODEBAR, legend=dict(orientation="h", yanchor="top", y=-0.3 / rows, x=0))
    return PreparedFigure(dict(data=traces, layout=layout), _validate=False)


@functools.lru_cache(maxsize=16)
def _subplot_grid_layout(titles: tuple[str, ...]) -> dict:
    from plotly.subplots import make_subplots

    cols = min(len(titles), PANELS_PER_ROW)
    rows = math.ceil(len(titles) / cols)
    cells = [[{} if row * cols + col < len(titles) else None for col in range(cols)] for row in range(rows)]
    # Room between panels for the next panel's y title and between rows for the titles and epoch axis.
    return make_subplots(rows=rows, cols=cols, specs=cells, subplot_titles=list(titles), horizontal_spacing=0.09,
                         vertical_spacing=0.22).to_dict()["layout"]


def subplot_row(titles: tuple[str, ...]) -> dict:
    """A fresh layout of panels with these titles, at most PANELS_PER_ROW a row, axes numbered row by row (x, x2, ...)
    (make_subplots' axes and annotations, made once per set of titles)."""
    return copy.deepcopy(_subplot_grid_layout(titles))


def epoch_axis(epochs: list[float], *, time_axis: bool = False) -> dict:
    """Axis settings for epochs: whole-number ticks (at most ~10), and a window of +-1 around a single epoch."""
    if time_axis or not epochs:
        return {}
    low, high = min(epochs), max(epochs)
    settings = dict(tickmode="linear", tick0=0, dtick=max(1, math.ceil((high - low) / 10)), tickformat="d")
    settings["range"] = [max(0.0, low - 1), high + 1] if low == high else [max(0.0, low - 0.5), high + 0.5]
    return settings


def value_range(key: str, values: list[float]) -> list[float]:
    """y range of a quality metric: fixed for bounded ones (accuracy 0-1, score 1-10), else 0 to the data + 10%."""
    fixed = QUALITY_RANGES.get(key)
    if fixed is not None:
        return [fixed[0], fixed[1] * 1.02]  # a hair above the bound so a perfect score is visible
    top = max([v for v in values if v is not None] or [1.0])
    return [0.0, top * 1.1 if top > 0 else 1.0]


def collapsed_digits(records) -> list[int] | None:
    """Digits absent or rare in the newest epoch's samples (mode collapse), None when unknown."""
    return ChartRecords.of(records).collapsed


def _collapsed(epochs: list) -> list[int] | None:
    for record in reversed(epochs):
        value = record.get("collapsed_digits", record.get("missing_digits"))  # runs logged before the rename
        if isinstance(value, list):
            return [int(v) for v in value if isinstance(v, (int, float))]
    return None


def _layout(*, title: str, x_title: str, y_title: str) -> dict:
    # automargin and a left margin: the y title and tick labels get room beside the plot instead of being cut off.
    return dict(title=dict(text=title, x=0, xanchor="left"), height=CHART_HEIGHT,
                margin=dict(l=60, r=50, t=70, b=10), legend=dict(orientation="h", yanchor="top", y=-0.28, x=0),
                xaxis=dict(title=dict(text=x_title), automargin=True),
                yaxis=dict(title=dict(text=y_title), automargin=True), uirevision="keep", modebar=MODEBAR)
