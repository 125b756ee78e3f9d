"""MNIST loading with validation, and each epoch's shuffled batches of image indices (the trainer gathers the
images on the device: see aigc.engine.gan.GAN.train_steps).

Resolution order: an explicit path (--data), the AIGC_MNIST environment variable, then
keras.datasets.mnist.load_data() (its cache, downloading when online).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from aigc.settings import MNIST_ENV as ENV_VAR, mnist_env_path

EXPECTED = {
    "x_train": (None, 28, 28),
    "y_train": (None,),
    "x_test": (None, 28, 28),
    "y_test": (None,),
}
HOW_TO_PROVIDE = (
    "Provide MNIST as an .npz in the Keras layout (x_train, y_train, x_test, y_test): "
    f"pass --data PATH or set {ENV_VAR}=PATH, or go online once so that "
    "keras.datasets.mnist.load_data() can download it to ~/.keras/datasets."
)


class DataError(Exception):
    """A user-facing problem with the dataset; str(error) is the whole message."""


def resolve_path(path: str | os.PathLike | None = None) -> Path | None:
    """The explicit path, else $AIGC_MNIST, else None (meaning: ask Keras)."""
    return Path(path).expanduser() if path else mnist_env_path()


def load_mnist(path: str | os.PathLike | None = None):
    """Return (x_train, y_train, x_test, y_test): uint8 (N, 28, 28) images and int labels 0..9."""
    resolved = resolve_path(path)
    if resolved is None:
        arrays = _load_from_keras()
        source = "keras.datasets.mnist"
    else:
        arrays = _load_npz(resolved)
        source = str(resolved)
    validate(arrays, source)
    return tuple(arrays[key] for key in EXPECTED)


def _load_from_keras() -> dict:
    import keras  # imported here: only this branch needs it

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # offline, proxy, corrupt cache...
        raise DataError(f"MNIST is not available ({type(error).__name__}). {HOW_TO_PROVIDE}") from None
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _load_npz(path: Path) -> dict:
    if not path.exists():
        raise DataError(f"MNIST file not found: {path}. {HOW_TO_PROVIDE}")
    if path.is_dir():
        raise DataError(f"MNIST path is a folder, not an .npz file: {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in EXPECTED if key not in npz.files]
            if missing:
                raise DataError(f"{path} is missing key(s) {', '.join(missing)}; expected {', '.join(EXPECTED)}")
            return {key: npz[key] for key in EXPECTED}
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DataError(f"{path} is not a readable .npz file (truncated or another format): {error}") from None


def check_file(path: str | os.PathLike) -> None:
    """Validate an MNIST .npz as the loader would, reading only array headers and labels; DataError when not."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"MNIST file not found: {path.name}")
    if path.is_dir():
        raise DataError(f"the MNIST path is a folder, not an .npz file: {path.name}")
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {key: _header_only(archive, key, path.name) if key.startswith("x_") else
                      _read_member(archive, key, path.name) for key in EXPECTED}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        raise DataError(f"{path.name} is not a readable .npz file (truncated or another format): "
                        f"{type(error).__name__}") from None
    validate(arrays, path.name)


def _read_member(archive: zipfile.ZipFile, key: str, name: str) -> np.ndarray:
    try:
        with archive.open(f"{key}.npy") as handle:
            return np.lib.format.read_array(handle, allow_pickle=False)
    except KeyError:
        raise DataError(f"{name} is missing key {key}; expected {', '.join(EXPECTED)}") from None


def _header_only(archive: zipfile.ZipFile, key: str, name: str) -> np.ndarray:
    """A zero-stride stand-in with the member's shape and dtype (the pixels are not read)."""
    try:
        with archive.open(f"{key}.npy") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _fortran, dtype = read_header(handle)
    except KeyError:
        raise DataError(f"{name} is missing key {key}; expected {', '.join(EXPECTED)}") from None
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape=shape, strides=(0,) * len(shape))


def validate(arrays: dict, source: str) -> None:
    """Raise DataError naming the first thing that is not MNIST-shaped."""
    for key, shape in EXPECTED.items():
        array = arrays[key]
        if array.ndim != len(shape) or any(want and got != want for got, want in zip(array.shape, shape)):
            want = "(N, 28, 28)" if len(shape) == 3 else "(N,)"
            raise DataError(f"{source}: {key} has shape {array.shape}, expected {want}")
    for key in ("x_train", "x_test"):
        if arrays[key].dtype != np.uint8:
            raise DataError(f"{source}: {key} has dtype {arrays[key].dtype}, expected uint8 pixels 0..255")
    for images, labels in (("x_train", "y_train"), ("x_test", "y_test")):
        label_array = arrays[labels]
        if not np.issubdtype(label_array.dtype, np.integer):
            raise DataError(f"{source}: {labels} has dtype {label_array.dtype}, expected integer labels")
        if len(label_array) != len(arrays[images]):
            raise DataError(f"{source}: {labels} has {len(label_array)} labels for {len(arrays[images])} images")
        if len(label_array) and (label_array.min() < 0 or label_array.max() > 9):
            raise DataError(f"{source}: {labels} has labels outside 0..9 "
                            f"(min {label_array.min()}, max {label_array.max()})")
    if len(arrays["x_train"]) == 0:
        raise DataError(f"{source}: x_train is empty")


def epoch_seed(run_seed: int, epoch: int) -> int:
    """The shuffle seed of a run's epoch (1-based): the same on every worker and on every resume."""
    return run_seed * 100_003 + epoch


def epoch_batches(n_images: int, *, batch_size: int, epoch_seed: int, skip_batches: int = 0) -> np.ndarray:
    """One epoch's batches as rows of image indices: int32 (steps, batch_size), remainder dropped.

    The shuffle order depends only on epoch_seed, so a resumed epoch skips the batches it already
    trained on, and every worker of a cluster sees the same global batches (each replica then trains
    on its own contiguous slice of every row: see aigc.engine.gan.GAN.train_steps).
    """
    order = np.random.default_rng(epoch_seed).permutation(n_images).astype(np.int32)
    steps = n_images // batch_size
    return order[:steps * batch_size].reshape(steps, batch_size)[skip_batches:]


def synthetic_mnist(n_train: int = 512, n_test: int = 128, *, seed: int = 0) -> dict:
    """Tiny fake MNIST (digit-dependent blobs) for tests and demos: same layout as the real file."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        for i, label in enumerate(labels):
            row, col = 4 + 2 * int(label), 4 + 2 * int(label)
            images[i, row:row + 6, 6:22] = 255
            images[i, 6:22, col:col + 4] = 200
        noise = rng.integers(0, 30, images.shape).astype(np.uint8)
        return np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8), labels

    x_train, y_train = make(n_train)
    x_test, y_test = make(n_test)
    return dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
