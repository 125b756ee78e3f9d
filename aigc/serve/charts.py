"""Plotly figures of a run's metrics.jsonl (pure functions: records in, figures out, no Streamlit).

Charts that don't mislead: bounded metrics on fixed axes (class accuracy 0-1, digit score 1-10),
integer epoch ticks, sensible ranges around a single point, units on every axis, and the plotly
toolbar upright at the right, clear of the left-aligned titles.
"""
from __future__ import annotations

import math

import plotly.graph_objects as go

from aigc.runs.files import finite_number

SMOOTHING = 0.8  # EMA weight of the smoothed loss curves
LOSS_SERIES = (("g_loss", "G loss", "#d62728"), ("d_loss", "D loss", "#1f77b4"))
PROB_SERIES = (("d_real", "D(x): real judged real", "#2ca02c"), ("d_fake", "D(G(z)): fake judged real", "#ff7f0e"))
# key, panel title, axis title (with units), fixed range (None: from 0 to the data)
QUALITY_SERIES = (("fdd", "Frechet digit distance (lower is better)", "FDD (evaluator feature units)", None),
                  ("digit_score", "Digit score (max 10)", "digit score (1-10)", (1.0, 10.0)),
                  ("class_accuracy", "Class accuracy", "share read as asked (0-1)", (0.0, 1.0)))
QUALITY_RANGES = {key: fixed for key, _title, _axis, fixed in QUALITY_SERIES}
CHART_HEIGHT = 360
STEP_TITLE = "training step (one batch)"
EPOCH_TITLE = "epoch"
MAX_CHART_POINTS = 2000  # per curve: more points add bytes and CPU per poll, not anything a reader can see
MODEBAR = dict(orientation="v", remove=["lasso2d", "select2d", "autoScale2d"])


def thin(rows: list, max_points: int = MAX_CHART_POINTS) -> list:
    """At most about max_points rows, evenly spaced, the last one always kept (what a chart can show of a long run)."""
    if len(rows) <= max_points:
        return rows
    stride = math.ceil(len(rows) / max_points)
    kept = rows[::stride]
    return kept if kept[-1] is rows[-1] else kept + [rows[-1]]


def split_records(records, *, max_points: int | None = None) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records), each sorted by global step; thinned to max_points each when given (charts)."""
    steps = [r for r in records if r.get("kind") == "step" and finite_number(r.get("step")) is not None]
    epochs = [r for r in records if r.get("kind") == "epoch" and finite_number(r.get("step")) is not None]
    steps, epochs = sorted(steps, key=lambda r: r["step"]), sorted(epochs, key=lambda r: r["step"])
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


def loss_figure(records: list[dict]) -> go.Figure:
    """G and D loss against the global step: raw (thin), smoothed (thick), per-epoch means (markers)."""
    return _series_figure(records, LOSS_SERIES, title="Losses", y_title="loss (nats; dcgan adds its class and R1 terms)")


def probability_figure(records: list[dict]) -> go.Figure:
    """D(x) and D(G(z)) against the global step (0.5 each when the game is balanced)."""
    figure = _series_figure(records, PROB_SERIES, title="Discriminator outputs", y_title="mean probability (0-1)")
    figure.update_yaxes(range=[0, 1])
    return figure


def _series_figure(records: list[dict], series, *, title: str, y_title: str) -> go.Figure:
    steps, epochs = split_records(records, max_points=MAX_CHART_POINTS)
    figure = go.Figure()
    for key, label, color in series:
        x = [r["step"] for r in steps]
        y = [finite_number(r.get(key)) for r in steps]
        if any(v is not None for v in y):
            figure.add_trace(go.Scatter(x=x, y=y, name=f"{label} (raw)", mode="lines", opacity=0.35,
                                        line=dict(color=color, width=1), legendgroup=key, showlegend=False))
            figure.add_trace(go.Scatter(x=x, y=smooth(y), name=label, mode="lines", legendgroup=key,
                                        line=dict(color=color, width=2.5)))
        points = [(r["step"], finite_number(r.get(key)), r.get("epoch")) for r in epochs]
        points = [p for p in points if p[1] is not None]
        if points:
            figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                        name=f"{label} (epoch mean)", mode="markers", legendgroup=key,
                                        showlegend=not any(v is not None for v in y),
                                        marker=dict(color=color, size=9, symbol="diamond",
                                                    line=dict(color="white", width=1)),
                                        customdata=[p[2] for p in points],
                                        hovertemplate="epoch %{customdata}: %{y:.4f}<extra></extra>"))
    _layout(figure, title=f"{title}<br><sup>thin: raw, thick: smoothed, diamonds: epoch means</sup>",
            x_title=STEP_TITLE, y_title=y_title)
    xs = sorted({r["step"] for r in steps + epochs})
    if len(xs) == 1:  # one point: a window around it, not plotly's -1..6 guess
        figure.update_xaxes(range=[max(0, xs[0] - 1), xs[0] + 1])
    return figure


def quality_figure(records: list[dict]) -> go.Figure | None:
    """Per-epoch quality (FDD, digit score, class accuracy) side by side, or None when none was recorded."""
    from plotly.subplots import make_subplots

    _steps, epochs = split_records(records, max_points=MAX_CHART_POINTS)
    probes = thin(sorted((r for r in records if r.get("kind") == "probe"),
                         key=lambda r: finite_number(r.get("epoch")) or 0))
    panels = []
    for key, label, axis, _fixed in QUALITY_SERIES:
        points, quick = (_points(rows, key) for rows in (epochs, probes))
        if points or quick:
            panels.append((key, label, axis, points, quick))
    if not panels:
        return None
    # One panel per metric: their scales differ by orders of magnitude.
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[label for _k, label, *_rest in panels])
    for column, (key, label, axis, points, quick) in enumerate(panels, start=1):
        if quick:  # the first epoch's quick checks: fewer samples, so drawn lighter
            figure.add_trace(go.Scatter(x=[p[0] for p in quick], y=[p[1] for p in quick], mode="lines+markers",
                                        name="first-epoch check (500 samples)", showlegend=False,
                                        line=dict(color="#9ecae1", dash="dot"), marker=dict(size=5)),
                             row=1, col=column)
        if points:
            figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=label,
                                        mode="lines+markers", showlegend=False, line=dict(color="#1f77b4")),
                             row=1, col=column)
        xs = [p[0] for p in points + quick]
        figure.update_xaxes(title_text=EPOCH_TITLE, row=1, col=column, **epoch_axis(xs + ([0.0] if quick else [])))
        figure.update_yaxes(title_text=axis, row=1, col=column, range=value_range(key, [p[1] for p in points + quick]))
    figure.update_layout(height=CHART_HEIGHT, margin=dict(l=10, r=50, t=40, b=10), uirevision="keep",
                         modebar=MODEBAR)
    return figure


def _points(records: list[dict], key: str) -> list[tuple[float, float]]:
    """(epoch, value) of the records that have both."""
    points = [(finite_number(r.get("epoch")), finite_number(r.get(key))) for r in records]
    return [p for p in points if p[0] is not None and p[1] is not None]


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


def collapsed_digits(records: list[dict]) -> list[int] | None:
    """Digits absent or rare in the newest epoch's samples (mode collapse), None when unknown."""
    _steps, epochs = split_records(records)
    for record in reversed(epochs):
        value = record.get("collapsed_digits", record.get("missing_digits"))  # runs logged before the rename
        if isinstance(value, list):
            return [int(v) for v in value if isinstance(v, (int, float))]
    return None


def _layout(figure: go.Figure, *, title: str, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(title=dict(text=title, x=0, xanchor="left"), height=CHART_HEIGHT,
                         margin=dict(l=10, r=50, t=60, b=10), legend=dict(orientation="h", yanchor="top", y=-0.28, x=0),
                         xaxis_title=x_title, yaxis_title=y_title, uirevision="keep", modebar=MODEBAR)
    return figure
