"""The run spec: every setting of a training run, resolved once from one table of defaults and limits.

A RunSpec is immutable, validated with messages for people, and saved whole in the run's
config.json when the run is created; resume reads it back. The trainer's command line is
generated from the same table (add_spec_arguments / spec_to_args / given_settings), so the
page and the CLI cannot disagree. No TensorFlow here: the page imports this module.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field

PRESETS = ("dcgan", "seed")
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
MAX_EPOCHS = 10_000
# Fixed once a run exists (class_loss: on or off).
MODEL_SETTINGS = ("preset", "discriminator", "spectral_norm", "width", "g_refine", "d_stddev")
LEGACY_WIDTH = 64  # the dcgan width of runs and files from before the width setting
# Settings the seed preset (the document's GAN, as written) keeps at its own defaults: they shape or train the
# dcgan networks only.
DCGAN_ONLY = ("discriminator", "spectral_norm", "width", "g_refine", "d_stddev", "class_loss", "class_boost")
# What a run saved before a setting existed trained with: the value built into the code until then. A resumed old
# run keeps it, whatever the table's default is today.
BEFORE_SETTING = {"class_loss": 0.0, "lr_half_life": 0.0, "r1_gamma": 0.0, "r1_every": 4, "r1_samples": 8,
                  "ema_warmup": 10.0, "lr_floor": 1 / 16, "class_fade": 2.0, "augment_shift": 0, "mode_seeking": 0.0,
                  "g_refine": 0, "d_stddev": False, "class_boost": 0.0, "class_boost_half_life": 0.15}
# Runs from before run specs recorded neither their batch size nor their total epochs in config.json: the
# defaults of those days.
BEFORE_SPECS = {"batch_size": 128, "epochs": 1}


class SpecError(ValueError):
    """A setting that cannot be used; str(error) is a whole sentence for a person."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one GAN; enough to rebuild both networks (travels inside every checkpoint)."""

    preset: str = "dcgan"
    latent_dim: int = 100
    num_classes: int = NUM_CLASSES
    base_filters: int = LEGACY_WIDTH  # dcgan only: width of the first conv layer (RunSpec.width)
    discriminator: str = "projection"  # dcgan only: "projection" or "concat" (label maps as extra channels)
    spectral_norm: bool = False  # dcgan only: spectral normalization on the discriminator's layers
    class_head: bool = False  # dcgan only: the discriminator also names the digit (AC-GAN); RunSpec.class_loss > 0
    g_refine: int = 0  # dcgan only: 3x3 convolutions the generator adds at 14x14 (RunSpec.g_refine)
    d_stddev: bool = False  # dcgan only: D sees its batch's spread as one more channel (RunSpec.d_stddev)

    def __post_init__(self):
        SETTINGS["preset"].check(self.preset)
        SETTINGS["discriminator"].check(self.discriminator)
        if not isinstance(self.latent_dim, int) or self.latent_dim <= 0:
            raise SpecError(f"latent_dim must be a positive whole number, got {self.latent_dim!r}")

    @property
    def width(self) -> int:
        """The run spec's name for base_filters."""
        return self.base_filters

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


@dataclass(frozen=True)
class Setting:
    """One row of the table: type, default (per preset when a dict), limits, and the help line."""

    name: str
    kind: type
    default: object
    help: str
    low: float | None = None
    high: float | None = None
    above_low: bool = False  # the low limit itself is excluded
    choices: tuple = ()
    optional: bool = False  # None is a valid value (a path not given)
    offered: tuple = ()  # the values a form offers (a subset of the allowed ones)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_for(self, preset: str):
        return self.default[preset] if isinstance(self.default, dict) else self.default

    def allowed(self) -> str:
        """The allowed values in words."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.kind is bool:
            return "true or false"
        if self.kind is str:
            return "a non-empty text"
        word = "a whole number" if self.kind is int else "a number"
        low = f"above {_short(self.low)}" if self.above_low else f"at least {_short(self.low)}"
        return f"{word} {low} and at most {_short(self.high)}" if self.low is not None else word

    def check(self, value):
        """value converted to this setting's type; SpecError naming the setting when it is not allowed."""
        if value is None and self.optional:
            return None
        if not self._accepts(value):
            raise SpecError(f"{self.flag}: must be {self.allowed()}, got {value!r}")
        return self.kind(value)

    def _accepts(self, value) -> bool:
        if self.kind is bool:
            return isinstance(value, bool)
        if self.kind is str:
            return isinstance(value, str) and bool(value) and (not self.choices or value in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        above = self.low is None or value > self.low or (value == self.low and not self.above_low)
        return above and (self.high is None or value <= self.high)

    def parse(self, text: str):
        """The value typed on a command line, checked."""
        if self.kind in (int, float):
            try:
                number = float(text) if self.kind is float else int(text)
            except ValueError:
                raise SpecError(f"{self.flag}: must be {self.allowed()}, got {text!r}") from None
            return self.check(number)
        return self.check(text)

    def to_text(self, value) -> str:
        return repr(float(value)) if self.kind is float else str(value)

    def default_text(self) -> str:
        """The default in words, per preset where they differ: '32 (seed preset: 128)'."""
        if not isinstance(self.default, dict):
            return "none" if self.default is None else _short(self.default)
        (_first, value), *others = self.default.items()
        return f"{_short(value)} ({', '.join(f'{preset} preset: {_short(other)}' for preset, other in others)})"


def _short(value) -> str:
    """A value as people write it: 2147483647 and 0.0625, not 2.14748e+09 and 0.0625000."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)) and float(value).is_integer():
        return str(int(value))
    return f"{value:g}" if isinstance(value, float) else str(value)


SETTINGS = {s.name: s for s in (
    Setting("preset", str, "dcgan", "model preset (fixed once the run exists)", choices=PRESETS),
    Setting("discriminator", str, "projection", "dcgan discriminator's conditioning (fixed once the run exists)",
            choices=("projection", "concat")),
    Setting("spectral_norm", bool, False, "dcgan: spectral normalization in D (fixed once the run exists)"),
    Setting("width", int, {"dcgan": 48, "seed": LEGACY_WIDTH},
            "dcgan: filters of D's first and G's last hidden convolution (fixed once the run exists)", 4, 512),
    Setting("g_refine", int, 0, "dcgan: 3x3 convolutions G adds at 14x14, before its last upsampling (fixed once the "
            "run exists)", 0, 4),
    Setting("d_stddev", bool, False, "dcgan: D sees the spread of the batch it judges as one more channel at 14x14 "
            "(minibatch standard deviation, Karras et al. 2018; fixed once the run exists)"),
    Setting("class_loss", float, {"dcgan": 1.0, "seed": 0.0},
            "dcgan: weight of the auxiliary class loss (AC-GAN): D learns to name real digits, G to have its fakes "
            "named as asked; it fades --class-fade times as fast as the learning rates (0 = off; on or off is fixed "
            "once the run exists)", 0.0, 10.0),
    Setting("class_fade", float, {"dcgan": 1.0, "seed": 2.0},
            "the class loss's weight halves N times per learning-rate half-life: a strong class signal early, then "
            "out of the way of diversity (0 = constant)", 0.0, 100.0),
    Setting("class_boost", float, {"dcgan": 3.0, "seed": 0.0},
            "dcgan: extra weight of the class loss at a run's start, halving every --class-boost-half-life epochs "
            "(counted like the learning rates' schedule): a fresh run names its digits sooner, and the boost is gone "
            "before it costs image quality (0 = off)", 0.0, 10.0),
    Setting("class_boost_half_life", float, 0.15, "the class boost's half-life in epochs", 0.0, MAX_EPOCHS,
            above_low=True),
    Setting("epochs", int, 1, "total epochs the run trains to", 1, MAX_EPOCHS),
    Setting("batch_size", int, {"dcgan": 32, "seed": 128},
            "images per step (changing it on resume restarts the current epoch)", 1, 65_536,
            offered=(16, 32, 64, 128, 256)),
    Setting("lr_g", float, {"dcgan": 2e-3, "seed": 2e-4}, "generator learning rate", 0.0, 1.0, above_low=True),
    Setting("lr_d", float, {"dcgan": 2e-3, "seed": 2e-4}, "discriminator learning rate", 0.0, 1.0, above_low=True),
    Setting("lr_half_life", float, {"dcgan": 3.0, "seed": 0.0},
            "halve both learning rates every N epochs, counting the epochs behind --init-from, down to --lr-floor "
            "of them (0 = constant)", 0.0, MAX_EPOCHS),
    Setting("lr_floor", float, 1 / 16, "the learning-rate schedule's lowest factor", 0.0, 1.0),
    Setting("beta_1", float, 0.5, "Adam beta_1 of both optimizers", 0.0, 0.999),
    Setting("loss", str, "bce", "adversarial loss", choices=("bce", "hinge")),
    Setting("ema_decay", float, {"dcgan": 0.999, "seed": 0.0}, "EMA of generator weights (0 = off)", 0.0, 0.99999),
    Setting("ema_warmup", float, 10.0, "EMA warm-up: at step t the decay is at most (1 + t) / (N + t), so the "
            "average does not hold on to the random start (1 = none)", 1.0, 1e6),
    Setting("r1_gamma", float, {"dcgan": 1.0, "seed": 0.0},
            "R1 penalty (Mescheder et al. 2018): gamma/2 times D's squared gradient at real images, keeping D flat "
            "at the data; lazy: every --r1-every steps, that many times as strong, on --r1-samples of the step's real "
            "images (0 = off)", 0.0, 1000.0),
    # Lazy R1 (Karras et al. 2020): on every step it cost 12-15% of the training rate; every 4th, about 1%.
    Setting("r1_every", int, 4, "R1: the penalty's interval in steps", 1, 1000),
    Setting("r1_samples", int, 8, "R1: real images per replica the penalty is estimated on", 1, 65_536),
    Setting("augment_shift", int, 0, "DiffAugment translation (Zhao et al. 2020): D sees every real and generated "
            "image shifted by up to N pixels, a fresh shift per image and step, differentiably, so G learns through "
            "it (0 = off)", 0, 8),
    Setting("mode_seeking", float, 0.0, "mode-seeking regularization (Mao et al. 2019): G is also asked to draw "
            "different digits from different noise for the same label, weighted by N, on 8 pairs per step "
            "(0 = off)", 0.0, 10.0),
    Setting("label_smoothing", float, 0.0, "one-sided label smoothing of real targets", 0.0, 0.5),
    Setting("precision", str, "auto", "auto = mixed_bfloat16 on a GPU or a CPU with native bf16, else float32",
            choices=("auto", "float32", "mixed_bfloat16")),
    Setting("jit", bool, False, "compile the train step with XLA"),
    Setting("data", str, None, "MNIST .npz (default: $AIGC_MNIST, else Keras)", optional=True),
    Setting("init_from", str, None, "start from these weights, e.g. checkpoints/generator.keras", optional=True),
    Setting("seed", int, 0, "random seed (weights, shuffling, noise)", 0, 2**31 - 1),
    Setting("train_limit", int, 0, "use only the first N training images (0 = all)", 0, 10**7),
    Setting("eval_samples", int, 2000, "samples for per-epoch quality (0 = off)", 0, 100_000),
    Setting("probe_seconds", float, 15.0, "in a run's first epoch, a 500-sample quality check and the sample grid "
            "every N seconds of training (0 = off)", 0.0, 86_400.0),
    Setting("log_every", int, 20, "steps per metrics line", 1, 100_000),
    Setting("checkpoint_seconds", float, 60.0, "seconds between checkpoints inside an epoch", 0.0, 86_400.0,
            above_low=True),
    Setting("keep_every", int, 0, "also keep generators/epoch_NNNN.keras every N epochs (0 = off)", 0, MAX_EPOCHS),
)}


@dataclass(frozen=True)
class RunSpec:
    """Every setting of one training run (see SETTINGS for meaning and limits); build it with resolve()."""

    preset: str
    discriminator: str
    spectral_norm: bool
    width: int
    g_refine: int
    d_stddev: bool
    class_loss: float
    class_fade: float
    class_boost: float
    class_boost_half_life: float
    epochs: int
    batch_size: int
    lr_g: float
    lr_d: float
    lr_half_life: float
    lr_floor: float
    beta_1: float
    loss: str
    ema_decay: float
    ema_warmup: float
    r1_gamma: float
    r1_every: int
    r1_samples: int
    augment_shift: int
    mode_seeking: float
    label_smoothing: float
    precision: str
    jit: bool
    data: str | None
    init_from: str | None
    seed: int
    train_limit: int
    eval_samples: int
    probe_seconds: float
    log_every: int
    checkpoint_seconds: float
    keep_every: int
    model_extra: dict = field(default_factory=dict)  # ModelConfig fields the CLI does not set (latent_dim...)

    def __post_init__(self):
        for name, setting in SETTINGS.items():
            object.__setattr__(self, name, setting.check(getattr(self, name)))
        if self.preset == "seed" and any(getattr(self, name) != SETTINGS[name].default_for("seed")
                                         for name in DCGAN_ONLY):
            flags = [SETTINGS[name].flag for name in DCGAN_ONLY]
            raise SpecError(f"the seed preset is the original document's GAN: {', '.join(flags[:-1])} and "
                            f"{flags[-1]} apply to dcgan only")
        if "base_filters" in self.model_extra:
            raise SpecError("model_extra: base_filters is the width setting")
        self.model  # noqa: B018  (validates model_extra)

    @classmethod
    def resolve(cls, **given) -> "RunSpec":
        """A spec from the given settings, every other one from the table's default for the preset."""
        unknown = set(given) - set(SETTINGS) - {"model_extra"}
        if unknown:
            raise SpecError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        preset = given.get("preset") or SETTINGS["preset"].default
        SETTINGS["preset"].check(preset)
        values = {name: s.default_for(preset) for name, s in SETTINGS.items()}
        values.update({k: v for k, v in given.items() if v is not None})
        return cls(**values)

    @property
    def model(self) -> ModelConfig:
        """The architecture this spec trains."""
        return ModelConfig(preset=self.preset, discriminator=self.discriminator, spectral_norm=self.spectral_norm,
                           base_filters=self.width, class_head=self.class_loss > 0, g_refine=self.g_refine,
                           d_stddev=self.d_stddev,
                           **self.model_extra)

    def learning_rates(self, epochs_done: float) -> tuple[float, float]:
        """(lr_g, lr_d) after epochs_done epochs: halved every lr_half_life epochs down to lr_floor (0: constant)."""
        factor = max(self.lr_floor, 0.5 ** (epochs_done / self.lr_half_life)) if self.lr_half_life else 1.0
        return self.lr_g * factor, self.lr_d * factor

    def class_weight(self, epochs_done: float) -> float:
        """The class loss's weight after epochs_done epochs: a strong class signal early, then out of the way of
        diversity. The base weight halves class_fade times per lr_half_life, without a floor (constant when there is
        no schedule); the boost comes on top and halves every class_boost_half_life epochs. 0 with the loss off."""
        if not self.class_loss:
            return 0.0
        factor = 0.5 ** (self.class_fade * epochs_done / self.lr_half_life) if self.lr_half_life else 1.0
        return self.class_loss * factor + self.class_boost * 0.5 ** (epochs_done / self.class_boost_half_life)

    def replace(self, **changes) -> "RunSpec":
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunSpec":
        """The spec saved in a config.json (missing settings from the table, unknown keys ignored)."""
        known = set(SETTINGS) | {"model_extra"}
        given = {k: v for k, v in data.items() if k in known}
        extra = dict(given.get("model_extra") or {})
        if "width" not in given:  # saved before the width setting: the width it was built with
            given["width"] = extra.get("base_filters", LEGACY_WIDTH)
        # Saved before a setting existed: what it trained with then (no class head, constant learning rates, no R1
        # penalty, and the constants of those days), never today's default.
        given = dict(BEFORE_SETTING, **given)
        extra.pop("base_filters", None)
        return cls.resolve(**dict(given, model_extra=extra))

    def changes(self, other: "RunSpec") -> dict:
        """{name: (mine, other's)} for every setting that differs."""
        return {name: (getattr(self, name), getattr(other, name)) for name in SETTINGS
                if getattr(self, name) != getattr(other, name)}


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; each defaults to None so that what was given can be told apart."""
    for setting in SETTINGS.values():
        if setting.name == "epochs":
            continue  # the CLI's --epochs means epochs to add: see aigc.cli
        text = f"{setting.help} [default: {setting.default_text()}; {setting.allowed()}]".replace("%", "%%")
        if setting.kind is bool:
            parser.add_argument(setting.flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            parser.add_argument(setting.flag, type=_argparse_type(setting), default=None, help=text,
                                choices=setting.choices or None, metavar=None if setting.choices else "VALUE")


def _argparse_type(setting: Setting):
    def parse(text: str):
        try:
            return setting.parse(text)
        except SpecError as error:
            raise argparse.ArgumentTypeError(str(error).split(": ", 1)[1]) from None
    parse.__name__ = setting.name  # argparse names the type in its messages
    return parse


def given_settings(args: argparse.Namespace) -> dict:
    """{name: value} of the settings given on the command line (epochs excluded)."""
    return {name: getattr(args, name) for name in SETTINGS
            if name != "epochs" and getattr(args, name, None) is not None}


def spec_to_args(spec: RunSpec) -> list[str]:
    """The trainer's flags that create a run with exactly this spec (the inverse of the CLI's parsing)."""
    return ["--epochs", str(spec.epochs)] + settings_to_args(
        {name: getattr(spec, name) for name in SETTINGS if name != "epochs"})


def settings_to_args(given: dict) -> list[str]:
    """The flags of some settings ({name: value}, epochs excluded; None means not given)."""
    args = []
    for name, value in given.items():
        setting = SETTINGS[name]
        if value is None:
            continue
        if setting.kind is bool:
            args.append(setting.flag if value else "--no-" + setting.flag[2:])
        else:
            args += [setting.flag, setting.to_text(value)]
    return args


def epochs_behind(lineage: list[dict]) -> int:
    """The epochs trained behind a generator file: the sum over its lineage (the chain of --init-from files)."""
    return sum(int(link.get("epochs") or 0) for link in lineage if isinstance(link, dict))
