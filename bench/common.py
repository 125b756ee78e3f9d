"""What every section of the bench shares: its data, TensorFlow's thread pools, the machine, the JSON output."""
from __future__ import annotations

import json
import os
import platform
import sys

from aigc import settings


def write_json(path: str | None, result: dict) -> None:
    """--json PATH: the results as JSON ('-': stdout)."""
    if path:
        text = json.dumps(result, indent=1, default=float)
        sys.stdout.write(text + "\n") if path == "-" else open(path, "w").write(text + "\n")


def configure(threads: int) -> None:
    """TensorFlow's thread pools as the trainer sets them, so the bench times the trainer's own configuration."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from aigc.cpus import configure_tensorflow_threads

    configure_tensorflow_threads(threads)


def load_data(args):
    """(x_train uint8 (N, 28, 28), y_train (N,), source): real MNIST when available, else synthetic."""
    from aigc.engine.data import DataError, load_mnist, synthetic_mnist

    if not args.tiny:
        try:
            x, y, _xt, _yt = load_mnist(args.data)
            return x, y, args.data or settings.env(settings.MNIST_ENV) or "keras"
        except DataError as error:
            if args.data:
                raise  # an explicit path that is not MNIST is an error, not a fallback
            print(f"note: {error}\nnote: using synthetic data; the quality section is skipped.", file=sys.stderr)
    fake = synthetic_mnist(1024, 16)
    return fake["x_train"], fake["y_train"], "synthetic"


def machine() -> dict:
    """CPU model, cores, flags that matter, TF version, GPUs."""
    import tensorflow as tf

    from aigc.cpus import cpu_model_and_flags

    model, flags = cpu_model_and_flags()
    model = model or platform.processor()
    wanted = ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"cpu": model, "cores": os.cpu_count(), "flags": [f for f in wanted if f in flags],
            "tensorflow": tf.__version__, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def json_path_error(path: str | None) -> str | None:
    """A sentence when --json names a file in a folder that does not exist (checked before minutes of work)."""
    if path and path != "-" and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return f"error: --json: folder does not exist: {os.path.dirname(path)}"
    return None
