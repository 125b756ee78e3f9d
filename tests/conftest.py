"""Shared fixtures (pytest finds them here): tiny synthetic MNIST, ONE tiny trained run, tiny generators, the app.

Plain helpers live in helpers.py; no test module imports another test module or this file.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_RUNS_ENV = "AIGC_RUNS_DIR"


def pytest_configure(config):
    """Every trainer and CLI of the session takes its lock and runs in a folder of the session's, never in the
    repository's runs/ (where a developer's job, or another test session, holds the lock): before collection,
    so that environments copied at import time have it too. Tests that need a runs root of their own set it."""
    config._aigc_previous_runs = os.environ.get(_RUNS_ENV)
    os.environ[_RUNS_ENV] = config._aigc_runs = tempfile.mkdtemp(prefix="aigc-test-runs-")


def pytest_unconfigure(config):
    runs = getattr(config, "_aigc_runs", None)
    if runs is None:
        return
    shutil.rmtree(runs, ignore_errors=True)
    if config._aigc_previous_runs is None:
        os.environ.pop(_RUNS_ENV, None)
    else:
        os.environ[_RUNS_ENV] = config._aigc_previous_runs


@pytest.fixture(scope="session")
def synthetic_npz(tmp_path_factory) -> Path:
    """A 512-image MNIST-layout .npz of digit-dependent blobs."""
    from aigc.engine.data import synthetic_mnist

    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    np.savez(path, **synthetic_mnist(512, 128))
    return path


def _files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file()}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, synthetic_npz) -> Path:
    """The session's one real training run, finished: read it only (copy it with trained_run_copy to change it).

    Trained in this process as `python -m aigc train` does: 2 epochs of 8 steps of 64 synthetic images, a quick
    check after every call of the first epoch (probe_seconds=1e-6) and 100-sample evaluations; a checkpoint,
    sample grid and epoch record per epoch, generator.keras, discriminator.keras, TensorBoard events, train.log.
    Tests that must train themselves (resume, stop, other settings) are in the slow lane.
    """
    from helpers import tiny_run

    run_dir = tmp_path_factory.mktemp("trained") / "runs" / "run"
    assert tiny_run(run_dir, synthetic_npz, epochs=2, probe_seconds=1e-6, eval_samples=100) == "finished"
    before = _files_of(run_dir)
    yield run_dir
    assert _files_of(run_dir) == before, "a test changed the shared trained run: use trained_run_copy"


@pytest.fixture
def trained_run_copy(trained_run, tmp_path) -> Path:
    """A private copy of the session's trained run, as tmp_path/runs/run."""
    target = tmp_path / "runs" / trained_run.name
    shutil.copytree(trained_run, target)
    return target


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
