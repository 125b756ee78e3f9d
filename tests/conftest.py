"""Shared fixtures: tiny synthetic MNIST, repo paths, a CLI runner. No test needs ../shared."""
from __future__ import annotations

import os
import subprocess
import sys
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


def run_cli(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m aigc ARGS` from the repo root and capture its output."""
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, "-m", "aigc", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=full_env)

