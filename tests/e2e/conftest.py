"""A real `streamlit run app.py` on a free loopback port, driven by Playwright with Debian's Chromium."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, free_port, shipped_or_tiny_checkpoints, stop_trainers, wait_healthy

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1500}  # tall enough that a screenshot shows a whole panel


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """Base URL of a live app whose runs, data and (when needed) checkpoints live in tmp folders."""
    from aigc.engine.data import synthetic_mnist

    tmp = tmp_path_factory.mktemp("e2e")
    np.savez(tmp / "mnist.npz", **synthetic_mnist(512, 64))
    runs = tmp / "runs"
    env = dict(os.environ, AIGC_RUNS_DIR=str(runs), AIGC_MNIST=str(tmp / "mnist.npz"),
               AIGC_CHECKPOINT_DIR=str(shipped_or_tiny_checkpoints(tmp / "ckpt")), TF_CPP_MIN_LOG_LEVEL="2",
               AIGC_TRAINING="on", AIGC_COOLDOWN_S="0", AIGC_TRAIN_ARGS="--eval-samples 0 --checkpoint-seconds 5")
    port = free_port()
    log = open(tmp / "server.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                "--server.port", str(port), "--server.address", "127.0.0.1",
                                "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield {"url": url, "runs": runs, "log": tmp / "server.log"}
    finally:
        stop_trainers(runs)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)  # these machines are shared: be patient, not flaky
    context.set_default_navigation_timeout(90_000)
    yield context.new_page()
    context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path | None:
    """Where to save panel screenshots: $AIGC_SCREENSHOT_DIR (e.g. docs), else nowhere."""
    folder = os.environ.get("AIGC_SCREENSHOT_DIR")
    return Path(folder) if folder else None
