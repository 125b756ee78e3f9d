"""The training password is remembered in the browser (issue 22): a reload and a second tab stay unlocked, Lock
training forgets it, and a forged cookie unlocks nothing. A real password-mode `streamlit run app.py` and Chromium."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, free_port, shipped_or_tiny_checkpoints, wait_healthy, wait_until
from test_explore_browser import _shoot

from aigc import settings
from aigc.serve.unlock import COOKIE, LIFETIME_S

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: the first page imports TensorFlow and loads the generator
PASSWORD = "open sesame, e2e"
CONTROLS = "Train more epochs"  # the new-job form: there only for a visitor who may train


@pytest.fixture(scope="module")
def password_server(tmp_path_factory):
    """A password-mode app on loopback (its runs root, and so its unlock secret file, in a tmp folder)."""
    from aigc.engine.data import synthetic_mnist

    tmp = tmp_path_factory.mktemp("unlock")
    np.savez(tmp / "mnist.npz", **synthetic_mnist(512, 64))  # the new-job form without a 'no MNIST' warning
    env = {k: v for k, v in os.environ.items() if k not in (settings.SECRET_ENV, settings.TRUSTED_PROXY_ENV)}
    env.update(AIGC_TRAINING="password", AIGC_TRAINING_PASSWORD=PASSWORD, AIGC_RUNS_DIR=str(tmp / "runs"),
               AIGC_MNIST=str(tmp / "mnist.npz"), AIGC_CHECKPOINT_DIR=str(shipped_or_tiny_checkpoints(tmp / "ckpt")),
               TF_CPP_MIN_LOG_LEVEL="2")
    port, log = free_port(), open(tmp / "server.log", "wb")
    argv = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    app = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", app)
        yield {"url": f"http://127.0.0.1:{port}", "runs": tmp / "runs"}
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            app.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):  # whatever of its group is left
            os.killpg(app.pid, signal.SIGKILL)
        log.close()


def _train(page, server) -> None:
    page.goto(f"{server['url']}/train", wait_until="domcontentloaded")
    page.get_by_test_id("stSidebar").wait_for(timeout=LOAD_S)


def _locked(page) -> None:
    """The password form is there and the controls are not (waits for the form: the page has rendered)."""
    page.get_by_label("Training password").wait_for(timeout=LOAD_S)
    page.locator("[data-test-script-state=notRunning]").wait_for()  # the whole run is drawn
    assert page.get_by_text(CONTROLS).count() == 0


def _unlocked(page) -> None:
    """The controls are there and the password form is not."""
    page.get_by_text(CONTROLS).first.wait_for(timeout=LOAD_S)
    page.get_by_text("remembered in this browser for 12 hours").wait_for()
    assert page.get_by_label("Training password").count() == 0


def _unlock_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def test_the_unlock_survives_a_reload_and_a_second_tab_until_lock_training(page, password_server, screenshot_dir):
    """Before: a reload started a new session, and the visitor had to type the password again."""
    _train(page, password_server)
    _locked(page)
    assert _unlock_cookie(page.context) is None
    page.get_by_label("Training password").fill(PASSWORD)
    page.get_by_role("button", name="Unlock training").click()
    _unlocked(page)
    cookie = wait_until(lambda: _unlock_cookie(page.context), timeout=30, what="the unlock cookie")
    # On the app's own origin (the script ran in the component's iframe), for the whole app, first-party only.
    assert cookie["domain"] == "127.0.0.1" and cookie["path"] == "/" and cookie["sameSite"] == "Strict"
    assert not cookie["secure"], "Secure is set only over https"
    assert abs(cookie["expires"] - (time.time() + LIFETIME_S)) < 120
    assert page.locator(f"iframe[srcdoc*='{COOKIE}']").count() <= 1

    page.reload(wait_until="domcontentloaded")
    _unlocked(page)
    assert page.locator("iframe[srcdoc*='max-age']").count() == 0, "a cookie unlock does not put a token in the page"
    _shoot(page, screenshot_dir, "train_unlocked")

    second = page.context.new_page()
    _train(second, password_server)
    _unlocked(second)
    second.close()

    page.get_by_role("button", name="Lock training").click()
    _locked(page)
    wait_until(lambda: _unlock_cookie(page.context) is None, timeout=30, what="the cookie to be deleted")
    page.reload(wait_until="domcontentloaded")
    _locked(page)


@pytest.mark.parametrize("value", ["forged", "1.9999999999." + "0" * 32 + "." + "0" * 64])
def test_a_forged_cookie_does_not_unlock(page, password_server, value):
    page.context.add_cookies([{"name": COOKIE, "value": value, "url": password_server["url"]}])
    _train(page, password_server)
    _locked(page)


def test_a_cookie_from_another_password_does_not_unlock(page, password_server, monkeypatch):
    """A token signed with this server's secret file (a replica's view) but for another password is refused."""
    from aigc.serve import unlock

    monkeypatch.setenv(settings.RUNS_ENV, str(password_server["runs"]))
    monkeypatch.delenv(settings.SECRET_ENV, raising=False)
    unlock._FILE_SECRETS.clear()
    try:
        good, stale = unlock.mint("127.0.0.1", PASSWORD), unlock.mint("127.0.0.1", "the old password")
    finally:
        unlock._FILE_SECRETS.clear()
    page.context.add_cookies([{"name": COOKIE, "value": stale, "url": password_server["url"]}])
    _train(page, password_server)
    _locked(page)
    page.context.add_cookies([{"name": COOKIE, "value": good, "url": password_server["url"]}])
    page.reload(wait_until="domcontentloaded")
    _unlocked(page)
