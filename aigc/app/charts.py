"""Plotly figures of a run's metrics.jsonl (pure functions: records in, figures out, no Streamlit)."""
from __future__ import annotations

import math

import plotly.graph_objects as go

SMOOTHING = 0.8  # EMA weight of the smoothed loss curves
LOSS_SERIES = (("g_loss", "G loss", "#d62728"), ("d_loss", "D loss", "#1f77b4"))
PROB_SERIES = (("d_real", "D(x): real judged real", "#2ca02c"), ("d_fake", "D(G(z)): fake judged real", "#ff7f0e"))
QUALITY_SERIES = (("fdd", "Frechet digit distance (lower is better)"),
                  ("digit_score", "Digit score (max 10)"),
                  ("class_accuracy", "Class accuracy"))
CHART_HEIGHT = 360


def split_records(records: list[dict]) -> tuple[list[dict], list[dict]]:
    """(step records, epoch records), each sorted by global step."""
    steps = [r for r in records if r.get("kind") == "step" and _num(r.get("step")) is not None]
    epochs = [r for r in records if r.get("kind") == "epoch" and _num(r.get("step")) is not None]
    return sorted(steps, key=lambda r: r["step"]), sorted(epochs, key=lambda r: r["step"])


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
    return _series_figure(records, LOSS_SERIES, title="Losses", y_title="loss")


def probability_figure(records: list[dict]) -> go.Figure:
    """D(x) and D(G(z)) against the global step (0.5 each when the game is balanced)."""
    figure = _series_figure(records, PROB_SERIES, title="Discriminator outputs", y_title="probability")
    figure.update_yaxes(range=[0, 1])
    return figure


def _series_figure(records: list[dict], series, *, title: str, y_title: str) -> go.Figure:
    steps, epochs = split_records(records)
    figure = go.Figure()
    for key, label, color in series:
        x = [r["step"] for r in steps]
        y = [_num(r.get(key)) for r in steps]
        if any(v is not None for v in y):
            figure.add_trace(go.Scatter(x=x, y=y, name=f"{label} (raw)", mode="lines", opacity=0.35,
                                        line=dict(color=color, width=1), legendgroup=key, showlegend=False))
            figure.add_trace(go.Scatter(x=x, y=smooth(y), name=label, mode="lines", legendgroup=key,
                                        line=dict(color=color, width=2.5)))
        points = [(r["step"], _num(r.get(key)), r.get("epoch")) for r in epochs]
        points = [p for p in points if p[1] is not None]
        if points:
            figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points],
                                        name=f"{label} (epoch mean)", mode="markers", legendgroup=key,
                                        showlegend=not any(v is not None for v in y),
                                        marker=dict(color=color, size=9, symbol="diamond",
                                                    line=dict(color="white", width=1)),
                                        customdata=[p[2] for p in points],
                                        hovertemplate="epoch %{customdata}: %{y:.4f}<extra></extra>"))
    return _layout(figure, title=f"{title}<br><sup>thin: raw, thick: smoothed, diamonds: epoch means</sup>",
                   x_title="step", y_title=y_title)


def quality_figure(records: list[dict]) -> go.Figure | None:
    """Per-epoch quality (FDD, digit score, class accuracy) side by side, or None when none was recorded."""
    from plotly.subplots import make_subplots

    _steps, epochs = split_records(records)
    panels = []
    for key, label in QUALITY_SERIES:
        points = [(r.get("epoch"), _num(r.get(key))) for r in epochs]
        points = [p for p in points if p[1] is not None and p[0] is not None]
        if points:
            panels.append((label, points))
    if not panels:
        return None
    # One panel per metric: their scales differ by orders of magnitude.
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[label for label, _ in panels])
    for column, (label, points) in enumerate(panels, start=1):
        figure.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=label,
                                    mode="lines+markers", showlegend=False), row=1, col=column)
        figure.update_xaxes(title_text="epoch", row=1, col=column)
    figure.update_layout(height=CHART_HEIGHT, margin=dict(l=10, r=10, t=40, b=10), uirevision="keep")
    return figure


def collapsed_digits(records: list[dict]) -> list[int] | None:
    """Digits absent or rare in the newest epoch's samples (mode collapse), None when unknown."""
    _steps, epochs = split_records(records)
    for record in reversed(epochs):
        value = record.get("collapsed_digits", record.get("missing_digits"))  # runs logged before the rename
        if isinstance(value, list):
            return [int(v) for v in value if isinstance(v, (int, float))]
    return None


def _layout(figure: go.Figure, *, title: str, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(title=title, height=CHART_HEIGHT, margin=dict(l=10, r=10, t=60, b=10),
                         legend=dict(orientation="h", yanchor="top", y=-0.28, x=0),
                         xaxis_title=x_title, yaxis_title=y_title, uirevision="keep")
    return figure


def _num(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
