"""The scale-out recipe: deploy/nginx.conf in front of two replicas, brought up on loopback with Debian's nginx."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aigc.settings import ROOT, shipped_generator
from helpers import loopback_conf

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONF = ROOT / "deploy" / "nginx.conf"
COMPOSE = ROOT / "deploy" / "compose.yaml"


def test_recipe_shape():
    text, compose = CONF.read_text(), COMPOSE.read_text()
    assert "hash $aigc_affinity consistent" in text and "Upgrade $http_upgrade" in text
    assert re.search(r"proxy_read_timeout\s+\d+h", text), "websockets must outlive nginx's 60 s default"
    assert "app-1:" in compose and "app-2:" in compose and 'AIGC_TRAINING: "off"' in compose
    assert "stop_grace_period" in compose


@pytest.mark.slow
@pytest.mark.skipif(not Path(NGINX).exists(), reason="needs Debian's nginx (apt-get install -y nginx)")
@pytest.mark.skipif(not shipped_generator().is_file(), reason="needs the shipped generator")
def test_two_replicas_behind_nginx_serve_a_crowd_with_sticky_sessions(tmp_path):
    from bench.crowd import crowd_against, free_port, run_coroutine, start_server, wait_healthy

    ports = [free_port(), free_port()]
    listen = free_port()
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / kind).mkdir(mode=0o777)
    conf = tmp_path / "nginx.conf"
    conf.write_text(loopback_conf(CONF.read_text(), listen=listen, replicas=ports, folder=tmp_path))
    nginx_cmd = [NGINX, "-p", str(tmp_path), "-c", str(conf),
                 "-g", f"daemon off; pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};"]
    check = subprocess.run(nginx_cmd + ["-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    replicas = [start_server(port=port) for port in ports]
    proxy = subprocess.Popen(nginx_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{listen}"

        async def run() -> dict:
            for port in ports:
                await wait_healthy(f"http://127.0.0.1:{port}", timeout_s=180)
            return await crowd_against(url, sessions=10, clicks=2, think_s=0.2, server_pid=None)

        result = run_coroutine(run)
    finally:
        proxy.terminate()
        for process in replicas:
            process.terminate()
        for process in [proxy, *replicas]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    assert result["errors"] == 0, result["error_samples"]
    assert result["clicks_ok"] == 20
    upstreams = result["upstreams"]
    assert len(upstreams) == 10 and all(len(seen) == 1 for seen in upstreams), upstreams  # page, websocket, media
    assert {seen[0] for seen in upstreams} == {f"127.0.0.1:{port}" for port in ports}, "both replicas serve"
