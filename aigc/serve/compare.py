"""Compare runs (no Streamlit): the runs and the shipped model as entries, their curves overlaid, a settings table.

What TensorBoard's run selector gives, in the page: pick entries, overlay a metric on epochs or
on training time (the sum of the epochs' own durations, so pauses between resumes don't count).
Honest by construction: a run is plotted on the global epoch of its lineage (a "train more" run
continues the curve of the weights it started from), and every quality figure carries its sample
count (FDD shrinks as the count grows; precision and recall move with it too): figures on different counts are
never set side by side without saying so, and any generator file can be re-evaluated on a common count (cached per
file). Improved precision and recall are drawn side by side in one figure, and their table columns are named apart
from the numeric-precision setting ("precision (P&R)" against "numeric precision").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go

from aigc import settings
from aigc.engine.run_plan import spec_of
from aigc.engine.spec import SpecError
from aigc.serve.caches import EVALUATIONS, file_key
from aigc.serve.charts import (EPOCH_TITLE, MODEBAR, QUALITY_SERIES, epoch_axis, samples_label, split_records, thin,
                               value_range)
from aigc.runs.files import finite_number, read_json
from aigc.runs.layout import RunPaths, list_runs
from aigc.serve.watcher import records_of

SHIPPED = "Shipped (dcgan)"
METRICS = {"fdd": "Frechet digit distance (lower is better)", "digit_score": "Digit score (1-10)",
           "class_accuracy": "Class accuracy (0-1)",
           "precision_recall": "Precision and recall (k = 3, 0-1, higher is better)",
           "g_loss": "G loss (nats)", "d_loss": "D loss (nats)"}
PANELS = {"precision_recall": ("precision", "recall")}  # a chooser item drawn as panels side by side, one metric each
PANEL_TITLES = {key: (title, axis) for key, title, axis, _range in QUALITY_SERIES}  # the Train page's, for the same
AXES = {"epoch": EPOCH_TITLE, "time": "training time (minutes, pauses excluded)"}
SETTING_KEYS = ("preset", "epochs", "batch_size", "lr_g", "lr_d", "loss", "ema_decay", "precision", "init_from")
QUALITY_KEYS = ("fdd", "digit_score", "class_accuracy", "precision", "recall")
# Table columns named apart: "precision" is also a setting (float32 / mixed_bfloat16), improved precision a quality.
COLUMNS = {"precision": "precision (P&R)", "recall": "recall (P&R)"}
SETTING_COLUMNS = {"precision": "numeric precision"}
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
COMMON_COUNTS = (1000, 2000, 5000, 10000)  # sample counts offered for a re-evaluation of every chosen entry
SHIPPED_SETTINGS = ("batch_size", "lr_g", "lr_d", "loss", "ema_decay", "precision")  # from the shipped card's recipe


@dataclass(frozen=True)
class Entry:
    """One comparable thing: a run folder, or the shipped model (its metrics, samples and eval beside it)."""

    name: str
    metrics: Path
    samples: tuple[Path, ...]
    spec: dict
    evaluation: dict  # a whole-file evaluation ({metric: value, "n": samples}), {} when there is none
    base_epochs: int = 0  # epochs behind the weights it started from: its epoch 1 is the lineage's base_epochs + 1
    eval_n: int | None = None  # samples of its per-epoch evaluations when the records do not say (the run spec's)
    generator: Path | None = None  # the generator file a re-evaluation measures


def entries(*, root: Path | None = None) -> list[Entry]:
    """The shipped model (when its training log is shipped) and every run with metrics, newest run first."""
    found = []
    shipped = settings.checkpoint_dir()
    if (shipped / "generator_metrics.jsonl").is_file():
        samples = tuple(p for p in [shipped / "generator_samples.png"] if p.is_file())
        evaluation = read_json(shipped / "generator_eval.json") or {}
        generator = shipped / "generator.keras"
        found.append(Entry(SHIPPED, shipped / "generator_metrics.jsonl", samples, shipped_spec(evaluation, generator),
                           evaluation, generator=generator if generator.is_file() else None))
    for paths in list_runs(root or settings.runs_root()):
        if paths.metrics.is_file():
            found.append(_run_entry(paths))
    return found


def shipped_spec(evaluation: dict, generator: Path) -> dict:
    """The shipped generator's settings for the table: its card's recipe (in its eval JSON, else inside the file)."""
    card = evaluation.get("card") if isinstance(evaluation.get("card"), dict) else None
    if card is None and generator.is_file():
        from aigc.engine.checkpoints import CheckpointError, read_meta  # reads the file's metadata, no TensorFlow

        try:
            card = read_meta(generator)[1]
        except CheckpointError:
            card = {}
    card = card or {}
    recipe = card.get("recipe") if isinstance(card.get("recipe"), dict) else {}
    spec = {key: recipe[key] for key in SHIPPED_SETTINGS if key in recipe}
    spec.update(preset=recipe.get("preset") or card.get("preset") or "dcgan", init_from="none (from scratch)")
    return spec


def run_spec(paths: RunPaths) -> dict:
    """A run's spec as a plain dict (config.json through the one reader), {} when there is none or it is unreadable."""
    record = read_json(paths.config)
    try:
        return spec_of(record).to_dict() if record else {}
    except (SpecError, TypeError, ValueError):  # a config.json this version cannot read: no settings shown
        return {}


def _run_entry(paths: RunPaths) -> Entry:
    spec = run_spec(paths)
    if spec.get("init_from"):
        spec["init_from"] = settings.without_paths(spec["init_from"])
    spec.pop("data", None)  # a server path, and no column of the table
    record = read_json(paths.config) or {}
    files = paths.sample_files()
    return Entry(paths.name, paths.metrics, tuple(files[-1:]), spec, {},
                 base_epochs=int(finite_number(record.get("base_epochs")) or 0),
                 eval_n=spec.get("eval_samples") or None,
                 generator=paths.generator if paths.generator.is_file() else None)


def curve(records: list[dict], key: str, *, axis: str = "epoch",
          base_epochs: int = 0) -> tuple[list[float], list[float]]:
    """(x, y) of a metric per epoch: x is the global epoch (base_epochs + the run's own), or the training time in
    minutes; missing values skipped."""
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
        xs.append(round(minutes, 3) if axis == "time" else base_epochs + epoch)
        ys.append(value)
    return xs, ys


def compare_figure(chosen: list[Entry], key: str, *, axis: str = "epoch") -> go.Figure | None:
    """One metric of several entries overlaid, or for a PANELS item its metrics side by side (one colour per entry
    in every panel); None when none of them recorded it."""
    keys = PANELS.get(key, (key,))
    traces, all_x, ys_of = [], [], {metric: [] for metric in keys}
    for index, entry in enumerate(chosen):
        records, name = records_of(entry.metrics), None
        for column, metric in enumerate(keys, start=1):
            points = thin(list(zip(*curve(records, metric, axis=axis, base_epochs=entry.base_epochs))))  # <= ~2,000
            if not points:
                continue
            xs, ys = [x for x, _y in points], [y for _x, y in points]
            shown, name = name is None, name or curve_name(entry, records, key, axis=axis)
            traces.append((column, go.Scatter(x=xs, y=ys, name=name, legendgroup=entry.name, showlegend=shown,
                                              mode="lines+markers", line=dict(color=COLORS[index % len(COLORS)]))))
            all_x += xs
            ys_of[metric] += ys
    if not all_x:
        return None
    if len(keys) == 1:
        figure = go.Figure()
    else:
        from plotly.subplots import make_subplots  # only for the side-by-side figures

        figure = make_subplots(rows=1, cols=len(keys), horizontal_spacing=0.1,
                               subplot_titles=[PANEL_TITLES.get(metric, (metric,))[0] for metric in keys])
    for column, trace in traces:
        figure.add_trace(trace, **({} if len(keys) == 1 else dict(row=1, col=column)))
    figure.update_layout(title=dict(text=METRICS.get(key, key), x=0, xanchor="left"), height=380,
                         margin=dict(l=10, r=50, t=50 if len(keys) == 1 else 80, b=10), modebar=MODEBAR,
                         uirevision="keep", legend=dict(orientation="h", yanchor="top", y=-0.25, x=0))
    figure.update_xaxes(title_text=AXES[axis], **epoch_axis(all_x, time_axis=axis == "time"))
    if axis == "time" and min(all_x) == max(all_x):
        figure.update_xaxes(range=[max(0.0, all_x[0] - 1), all_x[0] + 1])
    for column, metric in enumerate(keys, start=1):
        y_range = value_range(metric, ys_of[metric]) if metric in QUALITY_KEYS else None
        title = METRICS.get(key, key) if len(keys) == 1 else PANEL_TITLES.get(metric, (metric, metric))[1]
        figure.update_yaxes(title_text=title, range=y_range, **({} if len(keys) == 1 else dict(row=1, col=column)))
    return figure


def not_drawn(chosen: list[Entry], key: str) -> list[str]:
    """The chosen entries with no point of this metric (records that predate it, or evaluations turned off)."""
    keys = PANELS.get(key, (key,))
    return [entry.name for entry in chosen
            if not any(curve(records_of(entry.metrics), metric)[0] for metric in keys)]


def pr_ceiling(found: list[Entry]) -> dict | None:
    """{"precision", "recall", "n"} of real training digits against the test set (the calibration ladder's floor, as
    an evaluation JSON carries it), None when no entry's evaluation has it."""
    for entry in found:
        floor = (entry.evaluation.get("pr_ladder") or {}).get("floor") or {}
        values = [finite_number(floor.get(key)) for key in ("precision", "recall")]
        count = finite_number(entry.evaluation.get("ladder_n"))
        if None not in values and count:
            return dict(precision=values[0], recall=values[1], n=int(count))
    return None


def curve_name(entry: Entry, records, key: str, *, axis: str = "epoch") -> str:
    """The legend name: the entry, where its epochs start when it continues other weights, and for a quality metric
    (or a PANELS item of them) the sample count(s) of its evaluations."""
    name, keys = entry.name, PANELS.get(key, (key,))
    if entry.base_epochs and axis == "epoch":
        name += f" (from epoch {entry.base_epochs})"
    if any(metric in QUALITY_KEYS for metric in keys):
        _steps, epochs = split_records(records)
        counts = sorted({finite_number(r.get("eval_n")) or entry.eval_n or 0 for r in epochs
                         if any(finite_number(r.get(metric)) is not None for metric in keys)})
        name += f", {' / '.join(samples_label(count) for count in counts) or samples_label(None)}"
    return name


def final_quality(entry: Entry, records=None) -> tuple[dict, int | None, str]:
    """({metric: value}, sample count (None when not recorded), where from) of an entry's final quality: its
    whole-file evaluation, else its last evaluated epoch. An evaluation's pr_n (the count precision and recall were
    measured on: at most 10,000) comes along; epoch records measure them on their own count."""
    if any(finite_number(entry.evaluation.get(key)) is not None for key in QUALITY_KEYS):
        count = finite_number(entry.evaluation.get("n"))
        return ({key: entry.evaluation.get(key) for key in (*QUALITY_KEYS, "pr_n")}, int(count) if count else None,
                "evaluation of the file")
    _steps, epochs = split_records(records_of(entry.metrics) if records is None else records)
    for record in reversed(epochs):
        if any(finite_number(record.get(key)) is not None for key in QUALITY_KEYS):
            count = finite_number(record.get("eval_n")) or entry.eval_n
            epoch = int(finite_number(record.get("epoch")) or 0) + entry.base_epochs
            return {key: record.get(key) for key in QUALITY_KEYS}, int(count) if count else None, f"epoch {epoch}"
    return {}, None, "not measured"


def summary_rows(chosen: list[Entry], *, reevaluated: dict | None = None) -> list[dict]:
    """One row per entry: epochs (of its lineage), training time, settings, and final quality with its sample count.

    reevaluated: {entry name: evaluation on a common count} (see reevaluate), shown instead of the recorded figures."""
    rows = []
    for entry in chosen:
        records = records_of(entry.metrics)
        _steps, epochs = split_records(records)
        minutes = curve(records, "epoch", axis="time")[0]
        own = int(epochs[-1].get("epoch") or 0) if epochs else 0
        row = {"entry": entry.name, "epochs": entry.base_epochs + own}
        again = (reevaluated or {}).get(entry.name)
        quality, count, source = ((again, again.get("n"), "re-evaluated") if again else final_quality(entry, records))
        row["samples"] = samples_cell(count, quality)  # beside the figures it qualifies
        for key in QUALITY_KEYS:  # None (a blank cell) where not measured: records from before precision and recall
            value = finite_number(quality.get(key))
            row[COLUMNS.get(key, key)] = round(value, 4) if value is not None else None
        row["quality from"] = source
        row["training time (min)"] = round(minutes[-1], 1) if minutes else None
        row.update({SETTING_COLUMNS.get(key, key): _text(entry.spec.get(key)) for key in SETTING_KEYS
                    if key != "epochs"})
        rows.append(row)
    return rows


def samples_cell(count, quality: dict) -> str:
    """'2,000'; '20,000 (P&R on 10,000)' when precision and recall were measured on fewer (pr_n); 'not recorded'."""
    if not count:
        return "not recorded"
    pr_n = finite_number(quality.get("pr_n"))
    measured = any(finite_number(quality.get(key)) is not None for key in PANELS["precision_recall"])
    return f"{count:,}" + (f" (P&R on {int(pr_n):,})" if measured and pr_n and int(pr_n) != count else "")


def counts_differ(rows: list[dict]) -> bool:
    """True when the rows' quality figures are on different (or unrecorded) sample counts: not comparable as is."""
    measured = [row for row in rows if any(row.get(COLUMNS.get(key, key)) is not None for key in QUALITY_KEYS)]
    return len(measured) > 1 and (len({row["samples"] for row in measured}) > 1
                                  or any(row["samples"] == "not recorded" for row in measured))


def reevaluate(entry: Entry, n: int) -> dict | None:
    """The entry's generator file measured on n samples ({metric: value, "n": n}), once per file version and count
    for the whole server; None when it has no generator file. n must be one of COMMON_COUNTS (forged input)."""
    if entry.generator is None or n not in COMMON_COUNTS:
        return None
    path = entry.generator

    def make() -> dict:
        from aigc.quality import metrics  # TensorFlow, only on this click
        from aigc.serve.generators import load_served

        model, config, _card = load_served(path)  # the served generators' cache: one model per file
        result = metrics.evaluate_generator(model, config, n=n)
        return dict(metrics.summary(result), n=n, pr_n=result.get("pr_n"))  # precision and recall come along

    return EVALUATIONS.get_or_make((*file_key(path), n), make)


def _text(value) -> str:
    return "-" if value is None or value == "" else str(value)
