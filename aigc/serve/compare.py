"""Compare runs (no Streamlit): the runs and the shipped model as entries, their curves overlaid, a settings table.

What TensorBoard's run selector gives, in the page: pick entries, overlay a metric on epochs or
on training time (the sum of the epochs' own durations, so pauses between resumes don't count).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from aigc import settings
from aigc.engine.run_plan import spec_of
from aigc.engine.spec import SpecError
from aigc.serve.charts import EPOCH_TITLE, MODEBAR, epoch_axis, split_records, thin, value_range
from aigc.runs.files import finite_number, read_json
from aigc.runs.layout import RunPaths, list_runs
from aigc.serve.watcher import records_of

SHIPPED = "Shipped (dcgan)"
METRICS = {"fdd": "Frechet digit distance (lower is better)", "digit_score": "Digit score (1-10)",
           "class_accuracy": "Class accuracy (0-1)", "g_loss": "G loss (nats)", "d_loss": "D loss (nats)"}
AXES = {"epoch": EPOCH_TITLE, "time": "training time (minutes, pauses excluded)"}
SETTING_KEYS = ("preset", "epochs", "batch_size", "lr_g", "lr_d", "loss", "ema_decay", "precision", "init_from")
QUALITY_KEYS = ("fdd", "digit_score", "class_accuracy")


@dataclass(frozen=True)
class Entry:
    """One comparable thing: a run folder, or the shipped model (its metrics, samples and eval beside it)."""

    name: str
    metrics: Path
    samples: tuple[Path, ...]
    spec: dict
    evaluation: dict


def entries(*, root: Path | None = None) -> list[Entry]:
    """The shipped model (when its training log is shipped) and every run with metrics, newest run first."""
    found = []
    shipped = settings.checkpoint_dir()
    if (shipped / "generator_metrics.jsonl").is_file():
        samples = tuple(p for p in [shipped / "generator_samples.png"] if p.is_file())
        found.append(Entry(SHIPPED, shipped / "generator_metrics.jsonl", samples, {"preset": "dcgan"},
                           read_json(shipped / "generator_eval.json") or {}))
    for paths in list_runs(root or settings.runs_root()):
        if paths.metrics.is_file():
            found.append(_run_entry(paths))
    return found


def _run_entry(paths: RunPaths) -> Entry:
    record = read_json(paths.config)
    try:
        spec = spec_of(record).to_dict() if record else {}
    except (SpecError, TypeError):  # a config.json this version cannot read: the row shows no settings
        spec = {}
    if spec.get("init_from"):
        spec["init_from"] = settings.without_paths(spec["init_from"])
    files = paths.sample_files()
    return Entry(paths.name, paths.metrics, tuple(files[-1:]), spec, {})


def curve(records: list[dict], key: str, *, axis: str = "epoch") -> tuple[list[float], list[float]]:
    """(x, y) of a metric per epoch: x is the epoch, or the training time in minutes; missing values skipped."""
    _steps, epochs = split_records(records)
    xs, ys, minutes, start = [], [], 0.0, None
    for record in epochs:
        seconds = finite_number(record.get("epoch_time_s"))
        stamp = finite_number(record.get("time"))
        if seconds is not None:
            minutes += seconds / 60
        elif stamp is not None:  # older logs: wall-clock since the first epoch
            start = stamp if start is None else start
            minutes = (stamp - start) / 60
        value, epoch = finite_number(record.get(key)), finite_number(record.get("epoch"))
        if value is None or epoch is None:
            continue
        xs.append(round(minutes, 3) if axis == "time" else epoch)
        ys.append(value)
    return xs, ys


def compare_figure(chosen: list[Entry], key: str, *, axis: str = "epoch") -> go.Figure | None:
    """One metric of several entries overlaid (None when none of them recorded it)."""
    figure, all_x, all_y = go.Figure(), [], []
    for entry in chosen:
        points = thin(list(zip(*curve(records_of(entry.metrics), key, axis=axis))))  # a long run: 2,000 points
        xs, ys = [x for x, _y in points], [y for _x, y in points]
        if xs:
            figure.add_trace(go.Scatter(x=xs, y=ys, name=entry.name, mode="lines+markers"))
            all_x, all_y = all_x + xs, all_y + ys
    if not all_x:
        return None
    figure.update_layout(title=dict(text=METRICS.get(key, key), x=0, xanchor="left"), height=380,
                         margin=dict(l=10, r=50, t=50, b=10), modebar=MODEBAR, uirevision="keep",
                         legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    figure.update_xaxes(title_text=AXES[axis], **epoch_axis(all_x, time_axis=axis == "time"))
    if axis == "time" and min(all_x) == max(all_x):
        figure.update_xaxes(range=[max(0.0, all_x[0] - 1), all_x[0] + 1])
    y_range = value_range(key, all_y) if key in QUALITY_KEYS else None
    figure.update_yaxes(title_text=METRICS.get(key, key), range=y_range)
    return figure


def summary_rows(chosen: list[Entry]) -> list[dict]:
    """One row per entry: epochs, training time, settings, and final quality (the last evaluated epoch)."""
    rows = []
    for entry in chosen:
        records = records_of(entry.metrics)
        _steps, epochs = split_records(records)
        minutes = curve(records, "epoch", axis="time")[0]
        row = {"entry": entry.name, "epochs": int(epochs[-1].get("epoch") or 0) if epochs else 0,
               "training time (min)": round(minutes[-1], 1) if minutes else None}
        row.update({key: _text(entry.spec.get(key)) for key in SETTING_KEYS if key != "epochs"})
        for key in QUALITY_KEYS:
            last = entry.evaluation.get(key)
            if last is None:
                last = next((r.get(key) for r in reversed(epochs) if finite_number(r.get(key)) is not None), None)
            row[key] = round(float(last), 4) if finite_number(last) is not None else None
        rows.append(row)
    return rows


def _text(value) -> str:
    return "" if value is None else str(value)
