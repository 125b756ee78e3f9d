"""The served generator's model card (no Streamlit): quality, data, lineage, training, recipe, and a README.md.

The card dict travels inside the .keras file (aigc.engine.checkpoints.run_card writes it); quality
comes from the shipped `<name>_eval.json` beside the file, else the run's last evaluated epoch.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from aigc.text import counted
from aigc.engine.run_plan import spec_of
from aigc.engine.spec import SpecError, epochs_behind
from aigc.runs.files import finite_number, read_json
from aigc.serve.watcher import records_of
from aigc.settings import without_paths
from aigc.text import duration

QUALITY = (("fdd", "Frechet digit distance", "lower is better; real MNIST scores the floor"),
           ("fdd_floor", "FDD floor (real vs real)", "the best a generator could reach"),
           ("precision", "Precision (k = 3)", "share of samples inside the real digits' manifold, 0-1, higher is better"
            " (real vs real, 10,000 each: 0.88)"),
           ("recall", "Recall (k = 3)", "share of real test digits inside the samples' manifold, 0-1, higher is better"
            " (real vs real, 10,000 each: 0.90)"),
           ("digit_score", "Digit score", "1-10, higher is better"),
           ("class_accuracy", "Class accuracy", "share read as the requested digit, 0-1"))


def quality_of(path: Path, card: dict | None = None) -> tuple[dict, str]:
    """({metric: value}, source) for a generator file: its eval JSON beside it, its run's last evaluation, its card."""
    evaluation = read_json(path.with_name(f"{path.stem}_eval.json"))
    if evaluation:
        found = {key: evaluation[key] for key, *_ in QUALITY if _number(evaluation.get(key))}
        if found:
            return found, f"{path.stem}_eval.json ({_samples(evaluation.get('n'), grouped=False)})"
    for record in reversed(records_of(path.parent / "metrics.jsonl")):
        if record.get("kind") == "epoch" and _number(record.get("fdd")):
            samples = record.get("eval_n") or _eval_samples_of(path.parent)
            return ({key: record[key] for key, *_ in QUALITY if _number(record.get(key))},
                    f"the run's evaluation after epoch {record.get('epoch')} ({_samples(samples)})")
    found = {key: (card or {})[key] for key, *_ in QUALITY if _number((card or {}).get(key))}
    return (found, "the card inside the file (sample count not recorded)") if found else ({}, "")


def _samples(count, *, grouped: bool = True) -> str:
    """'2,000 samples' (FDD depends on the count: figures on different counts are not comparable)."""
    if not _number(count):
        return "sample count not recorded"
    return f"{int(count):,} samples" if grouped else f"{int(count)} samples"


def _eval_samples_of(run_dir: Path) -> int | None:
    """The evaluation's sample count in a run's spec (runs recorded before metrics carried eval_n)."""
    record = read_json(run_dir / "config.json")
    if not record:
        return None
    try:
        return spec_of(record).eval_samples
    except (SpecError, TypeError, ValueError):
        return None


def epochs_text(card: dict) -> str:
    """'30 shipped + 2 here' for a run continued from other weights; else the epoch count."""
    here = int(card.get("epochs") or 0)
    lineage = [link for link in card.get("lineage") or [] if isinstance(link, dict)]
    if not lineage:
        return str(here)
    base = int(card.get("base_epochs") or epochs_behind(lineage))
    origin = "shipped" if str(lineage[0].get("file") or "").startswith("checkpoints/") else "inherited"
    return f"{base} {origin} + {here} here"


def lineage_text(card: dict, label: str) -> str:
    """The chain of files, oldest first: 'checkpoints/generator.keras (30 epochs) -> this file (1 epoch)'."""
    links = [f"{without_paths(str(link.get('file') or '?'))} ({_epochs(link.get('epochs'))})"
             for link in card.get("lineage") or [] if isinstance(link, dict)]
    return " -> ".join(links + [f"{label} ({_epochs(int(card.get('epochs') or 0))})"])


def _epochs(count) -> str:
    return counted(int(count), "epoch") if _number(count) else "? epochs"


def card_rows(card: dict, config, label: str) -> list[dict]:
    """The card as table rows {'Property', 'Value'}: model, lineage, data, training time, hardware."""
    data = card.get("data") if isinstance(card.get("data"), dict) else {"file": card.get("data")}
    hardware = card.get("hardware") if isinstance(card.get("hardware"), dict) else {}
    facts = {"Preset": config.preset, "Conditional": "yes (digit label input)" if config.conditional else "no",
             "Latent size": config.latent_dim, "Epochs trained": epochs_text(card),
             "Lineage": lineage_text(card, label) if card.get("lineage") else None,
             "Steps": card.get("step"), "Data": _data_text(data),
             "Training time": _duration(card.get("training_seconds")),
             "Hardware": ", ".join(str(v) for v in (hardware.get("cpu"), _threads(hardware),
                                                     _accelerators(hardware), hardware.get("precision")) if v),
             "Run": card.get("run") or (str(card.get("run_dir") or "").rstrip("/").split("/")[-1] or None),
             "Saved": _date(card.get("saved_at"))}
    return [{"Property": key, "Value": without_paths(str(value))} for key, value in facts.items()
            if value not in (None, "")]


def quality_rows(quality: dict) -> list[dict]:
    """Quality as table rows {'Metric', 'Value', 'Reading'}."""
    return [{"Metric": name, "Value": f"{float(quality[key]):.4g}", "Reading": meaning}
            for key, name, meaning in QUALITY if key in quality]


def recipe_rows(card: dict) -> list[dict]:
    """The training recipe (the run spec's settings) as rows {'Setting', 'Value'}."""
    recipe = card.get("recipe") if isinstance(card.get("recipe"), dict) else {}
    return [{"Setting": key, "Value": without_paths(json.dumps(value) if isinstance(value, (dict, list)) else str(value))}
            for key, value in sorted(recipe.items())]


def usage(config, filename: str = "generator.keras") -> str:
    """Python that loads the file and draws ten digits, as this preset's generator is called (tested by running it)."""
    lines = ["import keras", "import numpy as np", "",
             f"generator = keras.models.load_model({json.dumps(filename)}, compile=False)",
             f"z = np.random.default_rng(0).standard_normal((10, {config.latent_dim})).astype(\"float32\")  # 10 latents"]
    if config.conditional:
        lines += ["labels = np.arange(10, dtype=\"int32\")  # the digit to draw for each latent: 0..9",
                  "images = generator({\"z\": z, \"label\": labels}, training=False)  # (10, 28, 28, 1) in [-1, 1]"]
    else:  # the seed preset takes no label: which digit comes out is up to the latent
        lines += ["images = generator(z, training=False)  # (10, 28, 28, 1) in [-1, 1]"]
    return "\n".join(lines)


def readme(label: str, config, card: dict, quality: dict, *, source: str = "",
           filename: str = "generator.keras") -> str:
    """A Hugging Face style model card: YAML metadata (library, tags, datasets, metrics) then Markdown.

    source: where the quality figures come from, with their sample count (quality_of's second value)."""
    metrics = [key for key, *_ in QUALITY if key in quality and key != "fdd_floor"]
    front = ["---", "library_name: keras", "license: mit", "pipeline_tag: unconditional-image-generation",
             "tags:", "  - gan", "  - dcgan", "  - mnist", "  - keras", "  - image-generation"]
    front += ["  - conditional" if config.conditional else "  - unconditional", "datasets:", "  - ylecun/mnist"]
    front += ["metrics:"] + [f"  - {key}" for key in metrics]
    front += ["model-index:", f"  - name: {json.dumps(label)}", "    results:", "      - task:",
              "          type: unconditional-image-generation", "        dataset:", "          type: ylecun/mnist",
              "          name: MNIST", "        metrics:"]
    for key in metrics:
        front += [f"          - type: {key}", f"            value: {float(quality[key]):.6g}"]
    body = [f"# {label}", "", f"A {config.preset} GAN generator for 28x28 MNIST digits"
            f"{', conditioned on the digit label' if config.conditional else ' (unconditional: no label input)'}.",
            "", "## Usage", "", "```python", usage(config, filename), "```",
            "", "## Card", "", "| Property | Value |", "| --- | --- |"]
    body += [f"| {row['Property']} | {row['Value']} |" for row in card_rows(card, config, label)]
    if quality:
        measured = f"From {source}. " if source else ""
        body += ["", "## Quality", "", measured + "FDD depends on the sample count: compare it only with figures on "
                 "the same count.", "", "| Metric | Value | Reading |", "| --- | --- | --- |"]
        body += [f"| {r['Metric']} | {r['Value']} | {r['Reading']} |" for r in quality_rows(quality)]
    if recipe_rows(card):
        body += ["", "## Training recipe", "", "| Setting | Value |", "| --- | --- |"]
        body += [f"| {r['Setting']} | {r['Value']} |" for r in recipe_rows(card)]
    return "\n".join(front + ["---", ""] + body) + "\n"


def _data_text(data: dict) -> str | None:
    if not data.get("file"):
        return None
    images = f", {int(data['train_images']):,} training images" if _number(data.get("train_images")) else ""
    return f"MNIST ({data['file']}{images})"


def _threads(hardware: dict) -> str | None:
    return f"{hardware['cpu_threads']} CPU threads" if hardware.get("cpu_threads") else None


def _accelerators(hardware: dict) -> str | None:
    found = [a for a in hardware.get("accelerators") or [] if a != "none"]
    return ", ".join(found) if found else ("no accelerator" if hardware else None)


def _duration(seconds) -> str | None:
    return duration(seconds) if _number(seconds) else None


def _date(stamp) -> str | None:
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M") if _number(stamp) else None


def _number(value) -> bool:
    return finite_number(value) is not None
