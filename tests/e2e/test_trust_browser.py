"""Trust per visitor behind the real nginx of deploy/: a proxy on the same host must not make everyone the owner."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, free_port, loopback_conf, shipped_or_tiny_checkpoints, wait_healthy

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(NGINX).exists(), reason="needs Debian's nginx (apt-get install -y nginx)")]


@pytest.fixture(scope="module")
def local_app_behind_nginx(tmp_path_factory):
    """`streamlit run app.py` as a local app (loopback, AIGC_TRAINING unset) and deploy/nginx.conf in front of it."""
    tmp = tmp_path_factory.mktemp("trust")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGC_TRAINING")}
    env.update(AIGC_RUNS_DIR=str(tmp / "runs"), AIGC_CHECKPOINT_DIR=str(shipped_or_tiny_checkpoints(tmp / "ckpt")),
               TF_CPP_MIN_LOG_LEVEL="2")
    port, listen = free_port(), free_port()
    log = open(tmp / "server.log", "wb")
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                            "--server.port", str(port), "--server.address", "127.0.0.1",
                            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
                           cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / kind).mkdir(mode=0o777)
    conf = tmp / "nginx.conf"
    conf.write_text(loopback_conf((REPO / "deploy" / "nginx.conf").read_text(), listen=listen, replicas=[port, port],
                                  folder=tmp))
    proxy = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf), "-g",
                              f"daemon off; pid {tmp / 'nginx.pid'}; error_log {tmp / 'error.log'};"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", app)
        wait_healthy(f"http://127.0.0.1:{listen}", proxy)
        yield {"direct": f"http://127.0.0.1:{port}", "proxied": f"http://127.0.0.1:{listen}"}
    finally:
        proxy.terminate()
        os.killpg(app.pid, signal.SIGTERM)
        for process in (proxy, app):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def _nav_labels(page) -> list[str]:
    page.get_by_test_id("stSidebarNav").wait_for()
    return [text.strip().splitlines()[-1] for text in page.get_by_test_id("stSidebarNavLink").all_inner_texts()]


def test_the_owner_on_loopback_may_train(page, local_app_behind_nginx):
    page.goto(local_app_behind_nginx["direct"] + "/train")
    page.get_by_text("Train more epochs").wait_for()
    assert "Train" in _nav_labels(page)


def test_a_visitor_through_the_proxy_is_remote(page, local_app_behind_nginx):
    """Before: the app judged 'local' from server.address alone, so nginx made every visitor the owner."""
    proxied = local_app_behind_nginx["proxied"]
    page.goto(proxied + "/generate")
    page.get_by_test_id("stImage").first.wait_for()
    assert "Train" not in _nav_labels(page), "training is off for a proxied visitor"
    page.goto(proxied + "/model")
    page.get_by_text("Download model card").first.wait_for()
    assert page.get_by_text("Download the generator").count() == 0, "weights downloads are the owner's"
    page.goto(proxied + "/train")
    page.get_by_test_id("stSidebarNav").wait_for()
    page.wait_for_load_state("networkidle")
    assert page.get_by_text("Train more epochs").count() == 0
