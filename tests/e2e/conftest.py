"""A real `streamlit run app.py` on a free loopback port, driven by Playwright with Debian's Chromium."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from helpers import save_untrained_generator, stop_trainers

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SERVER_START_S = 90
VIEWPORT = {"width": 1400, "height": 1500}  # tall enough that a screenshot shows a whole panel


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def shipped_or_tiny_checkpoints(folder: Path) -> Path:
    """The repository's checkpoints/ when its generator exists (read-only for the app), else tiny stand-ins."""
    if (REPO / "checkpoints" / "generator.keras").is_file():
        return REPO / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    save_untrained_generator(folder / "generator.keras")
    return folder


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
        _wait_healthy(url, process)
        yield {"url": url, "runs": runs, "log": tmp / "server.log"}
    finally:
        stop_trainers(runs)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _wait_healthy(url: str, process: subprocess.Popen) -> None:
    deadline = time.time() + SERVER_START_S
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not become healthy within {SERVER_START_S} s")


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
