"""The one module that owns generator files: a .keras zip with the ModelConfig and card inside."""
from __future__ import annotations

import contextlib
import json
import os
import time
import zipfile
from pathlib import Path

from aigc.cpus import cpu_model_and_flags
from aigc.engine.spec import IMAGE_SHAPE, ModelConfig, epochs_behind
from aigc.runs.files import atomic_write_with

META_NAME = "aigc_meta.json"


class CheckpointError(Exception):
    """A generator file that is missing or unusable; str(error) is the whole message."""


def save_model_file(model, path: str | os.PathLike, *, config: ModelConfig, card: dict | None = None) -> None:
    """Save a generator or discriminator with its config and card to path atomically (files.atomic_write_with)."""
    meta = {"model_config": json.loads(config.to_json()), "card": card or {}}

    def write(tmp: Path) -> None:
        model.save(tmp)
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(META_NAME, json.dumps(meta, indent=1, sort_keys=True))

    atomic_write_with(Path(path), write, suffix=".keras")


def read_meta(path: str | os.PathLike) -> tuple[ModelConfig, dict]:
    """(ModelConfig, card) stored in a generator file, without loading its weights."""
    path = _existing(path)
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(META_NAME))
        return ModelConfig.from_dict(meta["model_config"]), meta.get("card", {})
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, AssertionError, OSError) as error:
        raise CheckpointError(f"{path} is not an aigc generator file ({type(error).__name__}: {error})") from None


def load_generator(path: str | os.PathLike):
    """Load (keras.Model, ModelConfig, card) from a generator file; CheckpointError when unusable."""
    model, config, card = _load_model(path, "generator")
    if tuple(model.output_shape[1:]) != IMAGE_SHAPE:
        raise CheckpointError(f"{path} outputs {model.output_shape[1:]}, not 28x28x1 images")
    return model, config, card


def load_discriminator(path: str | os.PathLike):
    """Load (keras.Model, ModelConfig, card) from a discriminator file saved beside a generator."""
    model, config, card = _load_model(path, "discriminator")
    # One logit per image; with a class head (AC-GAN) also 10 class logits.
    expected = [(None, 1), (None, config.num_classes)] if config.class_head else (None, 1)
    shapes = [tuple(shape) for shape in model.output_shape] if isinstance(model.output_shape, list) \
        else tuple(model.output_shape)
    if shapes != expected:
        raise CheckpointError(f"{Path(path).name} outputs {model.output_shape}, not "
                              f"{'a logit and 10 class logits' if config.class_head else 'one logit'} per image")
    return model, config, card


def _load_model(path, kind: str):
    config, card = read_meta(path)
    import keras

    import aigc.engine.models  # noqa: F401  (registers the discriminator's own layer with Keras)

    try:
        model = keras.models.load_model(Path(path), compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise CheckpointError(f"{path} could not be loaded as a {kind} ({type(error).__name__}: {error})") from None
    return model, config, card


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"checkpoint path is a folder, not a .keras file: {path}")
    return path


def sibling_discriminator(generator_path: str | os.PathLike) -> Path | None:
    """The discriminator file saved beside a generator (generator.keras -> discriminator.keras), if any."""
    path = Path(generator_path)
    candidate = path.with_name(path.name.replace("generator", "discriminator"))
    return candidate if candidate != path and candidate.exists() else None


def export_for_serving(model, config: ModelConfig, *, discriminator: bool = False):
    """A float32 copy of a model trained under a mixed-precision policy (the same model when float32)."""
    import keras

    from aigc.engine.models import build_discriminator, build_generator

    policy = keras.mixed_precision.global_policy().name
    if policy == "float32":
        return model
    keras.mixed_precision.set_global_policy("float32")
    try:
        copy = build_discriminator(config) if discriminator else build_generator(config)
        copy.set_weights([w.numpy() if hasattr(w, "numpy") else w for w in model.get_weights()])
    finally:
        keras.mixed_precision.set_global_policy(policy)
    return copy


def restore_newest(checkpoint, ckpt_dir: str | os.PathLike, *, known=(), log=print) -> tuple[str | None, str | None]:
    """Restore the newest readable tf.train checkpoint in ckpt_dir -> (prefix or None, warning or None).

    A damaged newest checkpoint falls back to the one before it. Candidates come from the
    ckpt-N.index files as well as the manager's state file (`known`), so a corrupt state file
    does not silently restart a run from epoch 0. CheckpointError when none is readable.
    """
    found = {str(p)[:-len(".index")] for p in Path(ckpt_dir).glob("ckpt-*.index")} | {str(k) for k in known}
    problems = []
    for prefix in sorted(found, key=_checkpoint_number, reverse=True):
        try:
            checkpoint.restore(prefix).assert_existing_objects_matched()
        except Exception as error:  # noqa: BLE001  (TensorFlow raises many types for a damaged file)
            lines = str(error).strip().splitlines() or [""]
            problems.append(f"{Path(prefix).name}: {type(error).__name__}: {lines[0][:160]}")
            log(f"checkpoint {prefix} is unreadable ({problems[-1]}); trying an older one")
            continue
        warning = f"skipped damaged checkpoint(s) ({'; '.join(problems)})" if problems else None
        return prefix, warning
    if problems:
        raise CheckpointError(f"no readable checkpoint in {ckpt_dir} ({'; '.join(problems)}); move that folder "
                              f"aside to start over, or start a new run with --init-from on its generator.keras")
    return None, None


def _checkpoint_number(prefix: str) -> int:
    try:
        return int(str(prefix).rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1


NOT_RECIPE = ("data", "init_from", "epochs", "log_every", "checkpoint_seconds", "keep_every", "eval_samples")


def run_card(spec, *, epoch: int, step: int, paths, precision: str | None = None) -> dict:
    """The card a trainer writes into a run's generator: epochs here, lineage, data, time, hardware, recipe."""
    from aigc.runs.files import read_json, read_metrics

    card = {"preset": spec.preset, "epochs": epoch, "step": step, "run": paths.name, "saved_at": time.time(),
            "data": {"file": _shown_path(spec.data) or "keras mnist cache", "train_images": spec.train_limit or 60000},
            "recipe": {k: v for k, v in spec.to_dict().items() if k not in NOT_RECIPE and v not in (None, {}, "")},
            "hardware": hardware(precision)}
    card["training_seconds"] = training_seconds(read_metrics(paths.metrics), (read_json(paths.status) or {}),
                                                epoch=epoch)
    if spec.init_from:
        card["init_from"] = _shown_path(spec.init_from)
        card["lineage"] = lineage_of(spec.init_from)
        card["base_epochs"] = epochs_behind(card["lineage"])
    return card


def lineage_of(path) -> list[dict]:
    """The chain of generator files a file grew from, oldest first, itself last: [{'file', 'epochs', 'run'}]."""
    try:
        _config, card = read_meta(path)
    except CheckpointError:
        return [{"file": _shown_path(path), "epochs": None, "run": None}]
    links = [link for link in card.get("lineage", []) if isinstance(link, dict)]
    return links + [{"file": _shown_path(path), "epochs": card.get("epochs"), "run": card.get("run") or card.get("run_dir")}]


def training_seconds(records: list[dict], status: dict, *, epoch: int, now: float | None = None) -> float:
    """Seconds of training in this run up to `epoch`: its finished epochs' durations plus the current one's so far."""
    done = [r for r in records if r.get("kind") == "epoch" and isinstance(r.get("epoch_time_s"), (int, float))
            and (r.get("epoch") or 0) < epoch]
    seconds = sum(float(r["epoch_time_s"]) for r in done)
    since = max([float(r.get("time") or 0) for r in done] + [float(status.get("started_at") or 0)])
    current = (now or time.time()) - since if since else 0.0
    return round(seconds + max(current, 0.0), 1)


def hardware(precision: str | None = None) -> dict:
    """Where this process trains: CPU model and threads, accelerators TensorFlow sees, the precision policy."""
    import platform

    cpu = cpu_model_and_flags()[0] or platform.processor() or platform.machine()
    accelerators = []
    with contextlib.suppress(Exception):  # the card must never fail a save
        import keras
        import tensorflow as tf

        accelerators = [device.name for device in tf.config.list_logical_devices("GPU")]
        precision = precision or keras.mixed_precision.global_policy().name
    return {"cpu": cpu, "cpu_threads": os.cpu_count(), "accelerators": accelerators or ["none"],
            "precision": precision or "float32"}


def _shown_path(path) -> str | None:
    """A path as a card may show it: relative to the repository when inside it, else its file name."""
    if not path:
        return None
    from aigc.settings import ROOT

    resolved = Path(path).expanduser().resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else resolved.name
