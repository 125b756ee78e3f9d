"""The one module that owns filesystem locations and environment variables (no TensorFlow, no Streamlit)."""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository (or the image's /app)
SHIPPED_DIR = ROOT / "checkpoints"
SHIPPED_FILES = {"dcgan": "generator.keras", "seed": "seed_generator.keras"}

MNIST_ENV = "AIGC_MNIST"  # an MNIST .npz in the Keras layout
RUNS_ENV = "AIGC_RUNS_DIR"  # where training runs live (default: the repository's runs/)
CHECKPOINTS_ENV = "AIGC_CHECKPOINT_DIR"  # where the shipped generators live (default: checkpoints/)
THREADS_ENV = "AIGC_TRAIN_THREADS"  # CPU threads of a job started from the page
EXTRA_ARGS_ENV = "AIGC_TRAIN_ARGS"  # operator-only extra trainer flags (tests use --max-steps)
CHROMIUM_ENV = "AIGC_CHROMIUM"  # the browser the benchmarks and browser tests drive
VERBOSE_ENV = "AIGC_VERBOSE"  # 1: keep TensorFlow's C++ logging (set by --verbose, inherited by the trainer)
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def env(name: str, default: str = "") -> str:
    """The environment variable `name`, stripped ('' or default when unset)."""
    return (os.environ.get(name) or default).strip()


def runs_root() -> Path:
    """Where runs live: $AIGC_RUNS_DIR, else the repository's runs/ (absolute)."""
    return Path(env(RUNS_ENV) or ROOT / "runs").expanduser().resolve()


def checkpoint_dir() -> Path:
    """Where the shipped generators live: $AIGC_CHECKPOINT_DIR, else checkpoints/ (read-only for us)."""
    return Path(env(CHECKPOINTS_ENV) or SHIPPED_DIR).expanduser().resolve()


def shipped_generator(preset: str = "dcgan") -> Path:
    """Path of the shipped generator of a preset (it may not exist)."""
    return checkpoint_dir() / SHIPPED_FILES[preset]


def mnist_env_path() -> Path | None:
    """$AIGC_MNIST as a path, or None when unset."""
    value = env(MNIST_ENV)
    return Path(value).expanduser() if value else None


def keras_mnist_cache() -> Path:
    """Where keras.datasets.mnist.load_data() keeps its download."""
    return Path(env("KERAS_HOME") or Path.home() / ".keras") / "datasets" / "mnist.npz"


def chromium() -> str:
    """The Chromium binary for browser tests and benchmarks."""
    return env(CHROMIUM_ENV) or DEFAULT_CHROMIUM


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])(?:~|/)(?:/?[\w.@+-]+)+/?")


def without_paths(text: str) -> str:
    """text with every absolute (or ~) path cut to its last component: what a page may show of a server path."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(0).rstrip("/").rsplit("/", 1)[-1], str(text))
