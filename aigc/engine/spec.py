"""Dataclasses holding every default: ModelConfig travels inside each checkpoint."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

PRESETS = ("dcgan", "seed")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one GAN; enough to rebuild both networks."""

    preset: str = "dcgan"
    latent_dim: int = 100
    num_classes: int = NUM_CLASSES
    base_filters: int = 64  # dcgan only: width of the first conv layer
    discriminator: str = "projection"  # dcgan only: "projection" or "concat" (label maps as extra channels)
    spectral_norm: bool = False  # dcgan only: spectral normalization on the discriminator's layers

    def __post_init__(self):
        assert self.preset in PRESETS, f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}"
        assert self.latent_dim > 0, "latent_dim must be positive"
        assert self.discriminator in ("projection", "concat"), f"unknown discriminator {self.discriminator!r}"

    @property
    def conditional(self) -> bool:
        """True when the generator takes a digit label as a second input."""
        return self.preset == "dcgan"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def preset_defaults(preset: str) -> dict:
    """Training defaults that differ per preset (the seed preset keeps the document's recipe)."""
    if preset == "seed":
        return dict(lr_g=2e-4, lr_d=2e-4, beta_1=0.5, ema_decay=0.0, loss="bce", label_smoothing=0.0)
    return dict(lr_g=2e-4, lr_d=2e-4, beta_1=0.5, ema_decay=0.999, loss="bce", label_smoothing=0.0)


@dataclass
class TrainConfig:
    """Hyperparameters of one training invocation (the CLI fills these)."""

    run_dir: str = "runs/default"
    epochs: int = 1
    preset: str = "dcgan"
    batch_size: int = 128
    lr_g: float | None = None
    lr_d: float | None = None
    beta_1: float | None = None
    ema_decay: float | None = None
    loss: str | None = None
    label_smoothing: float | None = None
    data: str | None = None
    init_from: str | None = None
    max_steps: int | None = None
    seed: int = 0
    log_every: int = 20
    checkpoint_seconds: float = 60.0
    eval_samples: int = 2000
    precision: str = "auto"  # auto | float32 | mixed_bfloat16
    threads: int = 0  # 0 = TensorFlow's default
    nice: int = 0
    resume: bool = False
    train_limit: int = 0  # use only the first N training images (0 = all)
    extra: dict = field(default_factory=dict)

    def resolved(self) -> "TrainConfig":
        """Fill unset hyperparameters from the preset's defaults."""
        out = dataclasses.replace(self)
        for key, value in preset_defaults(self.preset).items():
            if getattr(out, key) is None:
                setattr(out, key, value)
        return out
