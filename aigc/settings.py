"""The one module that owns filesystem locations and environment variables (no TensorFlow, no Streamlit)."""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository (or the image's /app)
SHIPPED_DIR = ROOT / "checkpoints"
SHIPPED_FILES = {"dcgan": "generator.keras", "seed": "seed_generator.keras"}
# The evaluator, its reference statistics and its calibration are fit together: one folder holds all three.
EVALUATOR_FILE, EVALUATOR_STATS_FILE, CALIBRATION_FILE = ("evaluator.keras", "evaluator_stats.npz",
                                                         "evaluator_calibration.npz")

MNIST_ENV = "AIGC_MNIST"  # an MNIST .npz in the Keras layout
RUNS_ENV = "AIGC_RUNS_DIR"  # where training runs live (default: the repository's runs/)
CHECKPOINTS_ENV = "AIGC_CHECKPOINT_DIR"  # shipped generators and the evaluator (default: checkpoints/)
THREADS_ENV = "AIGC_TRAIN_THREADS"  # CPU threads of a job started from the page
EXTRA_ARGS_ENV = "AIGC_TRAIN_ARGS"  # operator-only extra trainer flags (tests use --max-steps)
CHROMIUM_ENV = "AIGC_CHROMIUM"  # the browser the benchmarks and browser tests drive
VERBOSE_ENV = "AIGC_VERBOSE"  # 1: keep TensorFlow's C++ logging (set by --verbose, inherited by the trainer)
SCREENSHOTS_ENV = "AIGC_SCREENSHOT_DIR"  # where the browser tests save panel screenshots (tests only)
DEFAULT_CHROMIUM = "/usr/bin/chromium"
# What a deployment allows (read by serve/hosting.load_policy, from Streamlit's secrets first, then the environment)
TRAINING_ENV = "AIGC_TRAINING"  # on | off | password (unset: on when the server listens on loopback only)
TRAINING_PASSWORD_ENV = "AIGC_TRAINING_PASSWORD"  # the password when AIGC_TRAINING=password
MAX_EPOCHS_ENV = "AIGC_MAX_EPOCHS"  # the most epochs one job may ask for
COOLDOWN_ENV = "AIGC_COOLDOWN_S"  # seconds between two jobs
KEEP_RUNS_ENV = "AIGC_KEEP_RUNS"  # finished runs kept (the oldest beyond are pruned; 0 = keep all)
MIN_FREE_MB_ENV = "AIGC_MIN_FREE_MB"  # free disk under the runs root a job needs to start
STOP_GRACE_ENV = "AIGC_STOP_GRACE_S"  # the supervisor's wait for a trainer to stop before the server stops
TRUSTED_PROXY_ENV = "AIGC_TRUSTED_PROXY"  # 1: the proxy in front sets X-Real-IP / X-Forwarded-For (password limiter keys)
SECRET_ENV = "AIGC_SECRET"  # signs remembered training unlocks (serve/unlock.py); unset: a 0600 file in the runs root


def env(name: str, default: str = "") -> str:
    """The environment variable `name`, stripped ('' or default when unset)."""
    return (os.environ.get(name) or default).strip()


def runs_root() -> Path:
    """Where runs live: $AIGC_RUNS_DIR, else the repository's runs/ (absolute)."""
    return Path(env(RUNS_ENV) or ROOT / "runs").expanduser().resolve()


def checkpoint_dir() -> Path:
    """Shipped generators and the evaluator's files: $AIGC_CHECKPOINT_DIR, else checkpoints/ (read-only for us)."""
    return Path(env(CHECKPOINTS_ENV) or SHIPPED_DIR).expanduser().resolve()


def evaluator_path() -> Path:
    """The evaluator model, in checkpoint_dir() (read at each call: the variable may change)."""
    return checkpoint_dir() / EVALUATOR_FILE


def evaluator_stats_path() -> Path:
    """The evaluator's MNIST test-set statistics, beside the evaluator."""
    return checkpoint_dir() / EVALUATOR_STATS_FILE


def calibration_path() -> Path:
    """The evaluator's calibration (temperature, out-of-distribution model), beside the evaluator."""
    return checkpoint_dir() / CALIBRATION_FILE


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


def trusted_proxy() -> bool:
    """True when the operator says a reverse proxy of theirs fronts the app (its client address headers are true)."""
    return env(TRUSTED_PROXY_ENV).lower() in ("1", "true", "yes", "on")
