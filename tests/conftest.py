"""Shared fixtures (pytest finds them here): tiny synthetic MNIST, tiny generators, the app's environment.

Plain helpers live in helpers.py; no test module imports another test module or this file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory) -> Path:
    """A 512-image MNIST-layout .npz of digit-dependent blobs."""
    from aigc.engine.data import synthetic_mnist

    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, **synthetic_mnist(512, 128))
    return path


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> Path:
    """Untrained dcgan + seed generators in the shipped layout (read-only for the app)."""
    from helpers import save_untrained_generator

    folder = tmp_path_factory.mktemp("ckpt")
    for preset, name in (("dcgan", "generator.keras"), ("seed", "seed_generator.keras")):
        save_untrained_generator(folder / name, preset=preset, card={"preset": preset, "epochs": 0, "fdd": 12.5})
    return folder


@pytest.fixture
def app_env(tmp_path, monkeypatch, tiny_checkpoints):
    """The app's environment for AppTest: tiny checkpoints, a runs folder of its own (returned), no MNIST, defaults."""
    import streamlit as st

    from aigc.serve.limiter import PROCESS_LIMITER

    monkeypatch.setenv("AIGC_CHECKPOINT_DIR", str(tiny_checkpoints))
    monkeypatch.setenv("AIGC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AIGC_MNIST", str(tmp_path / "no-mnist.npz"))
    for name in ("AIGC_TRAINING", "AIGC_TRAINING_PASSWORD", "AIGC_MAX_EPOCHS", "AIGC_COOLDOWN_S", "AIGC_KEEP_RUNS",
                 "AIGC_MIN_FREE_MB"):
        monkeypatch.delenv(name, raising=False)
    PROCESS_LIMITER.reset()
    st.cache_resource.clear()
    st.cache_data.clear()
    yield tmp_path / "runs"
    st.cache_resource.clear()
