"""`python -m aigc bench --browser`: the app in Chromium beside a trivial Streamlit page, idle and while training.

Click-to-image = from the click to a new, fully loaded <img> in the page (timed from Python
through Playwright; the same overhead applies to both pages, so compare them side by side).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from aigc import settings
from aigc.cpus import usable_cpus
from aigc.settings import ROOT

CHROMIUM = settings.chromium()
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
TRIVIAL_PAGE = '''import numpy as np
import streamlit as st

st.title("floor")
st.button("Generate")
st.image((np.random.rand(28, 28) * 255).astype(np.uint8).repeat(8, 0).repeat(8, 1), caption="random")
'''
# Resolves once a new image (not `old`) has loaded; the first stImage of the page is the one clicked for.
NEW_IMAGE_JS = """old => { const i = document.querySelector('[data-testid="stImage"] img');
  return i && i.src !== old && i.complete && i.naturalWidth > 0; }"""
FIRST_IMAGE_JS = "() => document.querySelector('[data-testid=\"stImage\"] img')?.src || ''"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_streamlit(script: Path, *, cwd: Path) -> tuple[subprocess.Popen, str]:
    """Launch `streamlit run script` headless on a free port; returns (process, url)."""
    port = _free_port()
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
               "--server.port", str(port), "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def wait_healthy(url: str, *, timeout_s: float = 60.0) -> None:
    """Poll /_stcore/health until the server answers ok."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"streamlit at {url} did not become healthy in {timeout_s:.0f} s")


class PeakRSS(threading.Thread):
    """Samples the resident memory of processes (with their children) every 0.2 s; keeps the peak per name."""

    def __init__(self):
        super().__init__(daemon=True)
        self.pids: dict[str, int] = {}
        self.peak_mb: dict[str, float] = {}
        self.running = True

    def run(self) -> None:
        import psutil

        while self.running:
            for name, pid in list(self.pids.items()):
                try:
                    process = psutil.Process(pid)
                    rss = sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
                except psutil.Error:
                    continue
                self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss / 2**20)
            time.sleep(0.2)


def click_to_image(page, button: str, *, timeout_ms: int = 30_000) -> float:
    """Milliseconds from clicking `button` to a new loaded image."""
    old = page.evaluate(FIRST_IMAGE_JS)
    target = page.get_by_role("button", name=button, exact=True).first
    start = time.perf_counter()
    target.click()
    page.wait_for_function(NEW_IMAGE_JS, arg=old, polling="raf", timeout=timeout_ms)
    return (time.perf_counter() - start) * 1e3


def _button(page) -> str:
    # The app keeps the seed on "Generate" (same image); "New seed" redraws: use it when present.
    return "New seed" if page.get_by_role("button", name="New seed", exact=True).count() else "Generate"


def _clicks(pages: dict, repeats: int) -> dict:
    """Interleaved click-to-image ms per page: {name: [ms, ...]}."""
    times = {name: [] for name in pages}
    buttons = {name: _button(page) for name, page in pages.items()}
    for index in range(repeats + 1):
        for name in (list(pages) if index % 2 == 0 else list(pages)[::-1]):
            elapsed = click_to_image(pages[name], buttons[name])
            if index:  # the first click warms the path
                times[name].append(elapsed)
    return times


def _summary(values: list[float]) -> dict:
    return {"median_ms": float(np.median(values)), "p95_ms": float(np.percentile(values, 95)), "n": len(values)}


def start_trainer(run_dir: Path, data: str | None, *, threads: int) -> subprocess.Popen:
    """The trainer as the app launches it (nice 10), with `threads` threads, into a private run directory."""
    command = [sys.executable, "-m", "aigc", "train", "--run-dir", str(run_dir), "--epochs", "5", "--nice", "10",
               "--threads", str(threads), "--eval-samples", "0", "--probe-seconds", "0"] + (["--data", data] if data else [])
    return subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_training(run_dir: Path, trainer: subprocess.Popen, *, timeout_s: float = 120.0) -> bool:
    """True once the trainer reports steps (status.json step > 0)."""
    import json

    deadline = time.time() + timeout_s
    while time.time() < deadline and trainer.poll() is None:
        try:
            status = json.loads((run_dir / "status.json").read_text())
            if status.get("state") == "running" and int(status.get("step") or 0) > 0:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    return False


def _trainer_rate(run_dir: Path) -> float | None:
    """The trainer's images per second over the clicks: the mean of its metrics lines so far (past the first)."""
    from aigc.runs.files import read_metrics

    rates = [r["img_per_s"] for r in read_metrics(run_dir / "metrics.jsonl") if r.get("kind") == "step"][1:]
    return float(np.mean(rates)) if rates else None


def _stop(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def browser(*, repeats: int, data: str | None = None) -> dict:
    """Cold start, click-to-image (idle and training) for the app and the floor page, peak RSS."""
    from playwright.sync_api import sync_playwright

    data = data or settings.env(settings.MNIST_ENV) or None
    work = Path(tempfile.mkdtemp(prefix="aigc_bench_browser_"))
    (work / "trivial.py").write_text(TRIVIAL_PAGE)
    memory, servers, trainer, result = PeakRSS(), {}, None, {}
    memory.start()
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = {}
            for name, script, cwd in (("app", ROOT / "app.py", ROOT), ("trivial page", work / "trivial.py", work)):
                start = time.perf_counter()
                servers[name], url = start_streamlit(script, cwd=cwd)
                memory.pids[f"{name} server"] = servers[name].pid
                wait_healthy(url)
                pages[name] = chromium.new_page()
                pages[name].goto(url)
                pages[name].wait_for_function(NEW_IMAGE_JS, arg="", polling="raf", timeout=120_000)
                result[f"cold_start_s ({name})"] = time.perf_counter() - start
            result["idle"] = {name: _summary(v) for name, v in _clicks(pages, repeats).items()}
            cores = usable_cpus()
            # The page's trainer at one thread fewer than the cores (today's rule) and at every core (nice 10 both).
            for threads in sorted({max(1, cores - 1), cores}) if data else ():
                run_dir = work / "runs" / f"bench{threads}"
                trainer = start_trainer(run_dir, data, threads=threads)
                memory.pids["trainer"] = trainer.pid
                if _wait_training(run_dir, trainer):
                    phase = f"training, {threads} of {cores} threads"
                    result[phase] = {name: _summary(v) for name, v in _clicks(pages, repeats).items()}
                    result[phase]["trainer img/s"] = _trainer_rate(run_dir)
                _stop(trainer)
            chromium.close()
    finally:
        _stop(trainer)
        for process in servers.values():
            _stop(process)
        memory.running = False
    result["peak_rss_mb"] = dict(memory.peak_mb)
    return result


def render_browser(result: dict) -> str:
    """The browser section as Markdown."""
    lines = ["\n## In the browser (Chromium via Playwright; click-to-image ms)",
             "| page | phase | median | p95 | clicks |", "|---|---|---|---|---|"]
    for phase in [key for key in result if key == "idle" or key.startswith("training")]:
        for name, row in result[phase].items():
            if isinstance(row, dict):
                lines.append(f"| {name} | {phase} | {row['median_ms']:.0f} | {row['p95_ms']:.0f} | {row['n']} |")
        if result[phase].get("trainer img/s"):
            lines.append(f"| (trainer) | {phase} | {result[phase]['trainer img/s']:.0f} img/s | | |")
    floor = result.get("idle", {}).get("trivial page", {}).get("median_ms")
    app = result.get("idle", {}).get("app", {}).get("median_ms")
    if floor and app:
        lines.append(f"\napp / trivial page (idle median): {app / floor:.2f}x")
    lines += [f"{key}: {value:.1f}" for key, value in result.items() if key.startswith("cold_start")]
    cold_app, cold_floor = result.get("cold_start_s (app)"), result.get("cold_start_s (trivial page)")
    if cold_app and cold_floor:  # from `streamlit run` to the first image in the browser, same machine, one after the other
        lines.append(f"first digits / trivial page's first image (cold start): {cold_app / cold_floor:.2f}x")
    lines += [f"peak RSS {name}: {mb:.0f} MB" for name, mb in result.get("peak_rss_mb", {}).items()]
    return "\n".join(lines)
