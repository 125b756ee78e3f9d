"""MNIST loading: every failure is one clear DataError; epochs are shuffled batches of indices."""
import numpy as np
import pytest

from aigc.engine.data import DataError, epoch_batches, load_mnist, synthetic_mnist


def write(tmp_path, **overrides):
    arrays = synthetic_mnist(64, 16)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "mnist.npz"
    np.savez(path, **arrays)
    return path


def test_loads_valid_file(tmp_path):
    x_train, y_train, x_test, y_test = load_mnist(write(tmp_path))
    assert x_train.shape == (64, 28, 28) and x_train.dtype == np.uint8
    assert y_test.shape == (16,)


def test_env_var_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_MNIST", str(write(tmp_path)))
    assert load_mnist()[0].shape == (64, 28, 28)


def test_explicit_path_beats_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_MNIST", str(tmp_path / "missing.npz"))
    assert load_mnist(write(tmp_path))[0].shape == (64, 28, 28)


def test_offline_without_file_says_both_ways(monkeypatch):
    monkeypatch.delenv("AIGC_MNIST", raising=False)
    import keras

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError) as error:
        load_mnist()
    assert "--data" in str(error.value) and "AIGC_MNIST" in str(error.value) and "online" in str(error.value)


@pytest.mark.parametrize("case, overrides, message", [
    ("missing key", {"y_test": None}, "missing key"),
    ("wrong shape", {"x_train": np.zeros((64, 32, 32), np.uint8)}, "expected (N, 28, 28)"),
    ("wrong dtype", {"x_train": np.zeros((64, 28, 28), np.float32)}, "expected uint8"),
    ("labels out of range", {"y_train": np.full(64, 11, np.uint8)}, "outside 0..9"),
    ("label count", {"y_train": np.zeros(10, np.uint8)}, "10 labels for 64 images"),
    ("float labels", {"y_train": np.zeros(64, np.float32)}, "integer labels"),
    ("empty", {"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, np.uint8)}, "empty"),
])
def test_bad_contents(tmp_path, case, overrides, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_mnist(write(tmp_path, **overrides))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_mnist(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="folder"):
        load_mnist(tmp_path)


def test_not_an_npz_and_truncated(tmp_path):
    text = tmp_path / "mnist.npz"
    text.write_text("hello")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_mnist(text)
    good = write(tmp_path)
    good.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(DataError, match="not a readable .npz"):
        load_mnist(good)


def test_epoch_batches_are_a_seeded_permutation_that_skips_what_was_trained():
    first = epoch_batches(100, batch_size=32, epoch_seed=5)
    again = epoch_batches(100, batch_size=32, epoch_seed=5)
    skipped = epoch_batches(100, batch_size=32, epoch_seed=5, skip_batches=1)
    other = epoch_batches(100, batch_size=32, epoch_seed=6)
    assert first.shape == (3, 32) and first.dtype == np.int32
    assert len(set(first.ravel())) == 96 and first.min() >= 0 and first.max() < 100  # no image twice in an epoch
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first[1:], skipped)
    assert not np.array_equal(first, other)
