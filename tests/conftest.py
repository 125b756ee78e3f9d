"""Shared fixtures: tiny synthetic MNIST and repo paths. No test needs the full MNIST file."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory) -> Path:
    """A 512-image MNIST-layout .npz of digit-dependent blobs."""
    from aigc.engine.data import synthetic_mnist

    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, **synthetic_mnist(512, 128))
    return path



