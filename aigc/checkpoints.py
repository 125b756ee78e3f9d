"""The one module that owns generator files: a .keras zip with the ModelConfig and card inside."""
from __future__ import annotations

import contextlib
import json
import os
import zipfile
from pathlib import Path

from aigc.config import IMAGE_SHAPE, ModelConfig

META_NAME = "aigc_meta.json"
ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = ROOT / "checkpoints"
SHIPPED_GENERATOR = SHIPPED_DIR / "generator.keras"
SHIPPED_SEED_GENERATOR = SHIPPED_DIR / "seed_generator.keras"


class CheckpointError(Exception):
    """A generator file that is missing or unusable; str(error) is the whole message."""


def save_generator(model, path: str | os.PathLike, *, config: ModelConfig, card: dict | None = None) -> None:
    """Save model + config + card to path atomically (temporary file in the folder, then os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.stem}.{os.getpid()}.tmp.keras"
    try:
        model.save(tmp)
        meta = {"model_config": json.loads(config.to_json()), "card": card or {}}
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.writestr(META_NAME, json.dumps(meta, indent=1, sort_keys=True))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


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
    config, card = read_meta(path)
    import keras

    try:
        model = keras.models.load_model(Path(path), compile=False)
    except Exception as error:  # Keras raises many types for a damaged archive
        raise CheckpointError(f"{path} could not be loaded as a generator ({type(error).__name__}: {error})") from None
    if tuple(model.output_shape[1:]) != IMAGE_SHAPE:
        raise CheckpointError(f"{path} outputs {model.output_shape[1:]}, not 28x28x1 images")
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

    from aigc.models import build_discriminator, build_generator

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
