"""`python -m aigc bench --browser`: the app in Chromium beside a trivial Streamlit page, idle and while training.

Click-to-image = from the click to a new, fully loaded <img> in the page (timed from Python
through Playwright; the same overhead applies to both pages, so compare them side by side).
Mouse-up to drawing result = on /draw, from releasing the mouse after one stroke on the canvas to
the whole result of that drawing shown: the reading and every image of the result area new and
loaded (`--only-draw` runs this alone).
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


# Draw's result area: 'ok' once it reads the drawing and shows DRAW_IMAGES images, none of them one of `old` (the
# previous drawing's), all loaded: the drawing MNIST-style, the GAN's version, the ten digits, the slerp. A panel
# that hit a problem answers its message at once (no minute-long wait for a result that will not come).
DRAW_IMAGES = 4
DRAW_RESULT_JS = """([old, count]) => {
  const failed = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stAlertContainer"]')]
    .find(a => a.innerText.includes('hit a problem'));
  if (failed) return 'error: ' + failed.innerText;
  const area = document.querySelector('.st-key-draw_result');
  if (!area || !area.innerText.includes('The evaluator reads')) return false;
  const images = [...area.querySelectorAll('[data-testid="stImage"] img')];
  return images.length >= count && images.every(i => !old.includes(i.src) && i.complete && i.naturalWidth > 0)
    && 'ok'; }"""
DRAW_SOURCES_JS = "() => [...document.querySelectorAll('.st-key-draw_result [data-testid=\"stImage\"] img')].map(i => i.src)"
CANVAS_KEY_JS = """() => { const c = document.querySelector('[class*="st-key-draw_canvas_"]');
  return c ? [...c.classList].find(k => k.startsWith('st-key-draw_canvas_')) : null; }"""
# One stroke per digit shape, in canvas pixels (280 x 280; the toolbar covers the top ~40 px until hovered).
DIGIT_STROKES = {
    "7": [(80, 70), (200, 70), (120, 245)],
    "1": [(140, 55), (142, 250)],
    "0": [(140, 60), (90, 100), (85, 180), (140, 240), (195, 180), (190, 100), (140, 60)],
    "2": [(85, 100), (140, 60), (195, 100), (90, 235), (205, 235)],
    "3": [(85, 70), (190, 75), (130, 145), (195, 190), (85, 240)],
    "4": [(170, 245), (170, 55), (80, 180), (210, 180)],
    "5": [(195, 60), (95, 60), (90, 140), (190, 160), (170, 240), (85, 235)],
    "6": [(180, 60), (100, 150), (95, 230), (175, 225), (170, 160), (100, 170)],
    "8": [(190, 70), (90, 70), (190, 230), (90, 230), (190, 70)],
    "9": [(185, 90), (100, 85), (110, 150), (185, 120), (180, 250)],
}


def drawing_strokes(n: int, *, seed: int = 0) -> list[tuple[str, list[tuple[float, float]]]]:
    """n different drawings: (digit, points) cycling 7, 1, 0, 2, ... with every point jittered (no two alike)."""
    rng = np.random.default_rng(seed)
    digits = list(DIGIT_STROKES)
    out = []
    for index in range(n):
        digit = digits[index % len(digits)]
        shift = rng.uniform(-12, 12, size=2)
        points = [(float(np.clip(x + shift[0] + rng.uniform(-8, 8), 20, 260)),
                   float(np.clip(y + shift[1] + rng.uniform(-8, 8), 45, 265))) for x, y in DIGIT_STROKES[digit]]
        out.append((digit, points))
    return out


def _canvas(page):
    """The mounted canvas (its container's key ends with the page's Clear count)."""
    return page.locator("[class*='st-key-draw_canvas_'] canvas.upper-canvas").first


def _canvas_key(page) -> str:
    return page.evaluate(CANVAS_KEY_JS) or ""


def draw_to_result(page, points, *, timeout_ms: int = 60_000) -> float:
    """Milliseconds from mouse-up after one stroke through `points` (canvas pixels) to that drawing's whole result."""
    old = page.evaluate(DRAW_SOURCES_JS)
    canvas = _canvas(page)
    canvas.wait_for(timeout=timeout_ms)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    start = time.perf_counter()
    page.mouse.up()
    answer = page.wait_for_function(DRAW_RESULT_JS, arg=[old, DRAW_IMAGES], polling="raf", timeout=timeout_ms)
    elapsed = (time.perf_counter() - start) * 1e3
    if answer.json_value() != "ok":
        raise RuntimeError(f"the page answered the drawing with {answer.json_value()!r}")
    return elapsed


def clear_canvas(page, *, timeout_ms: int = 60_000) -> None:
    """Press the page's Clear (it mounts an empty canvas under a new key); wait for it and the empty result area."""
    key = _canvas_key(page)
    page.get_by_role("button", name="Clear", exact=True).click()
    page.locator(".st-key-draw_result").get_by_text("Draw a digit on the canvas").wait_for(timeout=timeout_ms)
    page.wait_for_function(f"() => ({DRAW_SOURCES_JS})().length === 0", polling="raf", timeout=timeout_ms)
    page.wait_for_function(f"key => ({CANVAS_KEY_JS})() !== key && document.querySelectorAll("
                           f"'[class*=\"st-key-draw_canvas_\"]').length === 1", arg=key, polling="raf", timeout=timeout_ms)
    _canvas(page).wait_for(timeout=timeout_ms)


def result_figures(text: str) -> tuple[int | None, float | None]:
    """(the digit the evaluator reads, the inversion's seconds) from the result area's text ('The evaluator reads
    a 7 ...', 'the GAN's 7 (pixel MSE 0.012, 0.77 s)'); None where the text does not say."""
    import re

    read = re.search(r"The evaluator reads an? (\d)", text)
    seconds = re.search(r"the GAN's \d \(pixel MSE [\d.]+, ([\d.]+) s\)", text)
    return (int(read.group(1)) if read else None), (float(seconds.group(1)) if seconds else None)


def wait_idle(pid: int | None, *, below: float = 5.0, quiet_s: float = 5.0, timeout_s: float = 180.0) -> float:
    """Seconds waited until the process used under `below`% of one core for `quiet_s` in a row. A server warms up
    in a background thread a few seconds after its first page (aigc/app/frame.py): a drawing meanwhile would time
    that instead, so the quiet stretch is longer than that delay."""
    import psutil

    start, quiet, tick = time.perf_counter(), 0.0, 0.5
    try:
        process = psutil.Process(pid) if pid else None
        while process and quiet < quiet_s and time.perf_counter() - start < timeout_s:
            before = sum(process.cpu_times()[:2])
            time.sleep(tick)
            busy = (sum(process.cpu_times()[:2]) - before) / tick * 100 >= below
            quiet = 0.0 if busy else quiet + tick
    except psutil.Error:
        pass
    return time.perf_counter() - start


def draws(chromium, url: str, *, n: int, seed: int = 0, server_pid: int | None = None) -> dict:
    """Mouse-up to result for n different drawings on /draw, the canvas cleared between them (first one apart),
    once the server is idle."""
    page = chromium.new_page(viewport={"width": 1400, "height": 1500})
    try:
        page.goto(url.rstrip("/") + "/draw", timeout=120_000)
        page.get_by_text("Draw a digit on the canvas").wait_for(timeout=120_000)
        waited = wait_idle(server_pid)
        times, inversions, digits, reads = [], [], [], []
        for index, (digit, points) in enumerate(drawing_strokes(n, seed=seed)):
            if index:
                clear_canvas(page)
            try:
                times.append(draw_to_result(page, points))
            except Exception as error:  # Playwright's TimeoutError, the panel's error: say which drawing
                raise RuntimeError(f"drawing {index + 1} ({digit}): no whole result: {error}") from None
            read, seconds = result_figures(page.locator(".st-key-draw_result").inner_text())
            inversions.append(seconds)
            reads.append(read)
            digits.append(digit)
            print(f"[bench]   drawing {index + 1}/{n} ({digit}): {times[-1]:.0f} ms", file=sys.stderr, flush=True)
    finally:
        page.close()
    result = {"first_ms": times[0], "drawn": digits, "read": reads, "ms": [round(t, 1) for t in times],
              "page_inversion_s": inversions, "waited_for_idle_server_s": round(waited, 1)}
    if len(times) > 1:
        result.update(_summary(times[1:]))
        known = [s for s in inversions[1:] if s is not None]
        result["page_inversion_median_s"] = float(np.median(known)) if known else None
    return result


def draw_only(*, n: int, seed: int = 0) -> dict:
    """`bench --only-draw`: start the app alone, measure n drawings' mouse-up to result, peak RSS."""
    from playwright.sync_api import sync_playwright

    memory, server, result = PeakRSS(), None, {}
    memory.start()
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            server, url = start_streamlit(ROOT / "app.py", cwd=ROOT)
            memory.pids["app server"] = server.pid
            wait_healthy(url)
            result["draw"] = draws(chromium, url, n=n, seed=seed, server_pid=server.pid)
            chromium.close()
    finally:
        _stop(server)
        memory.running = False
    result["peak_rss_mb"] = dict(memory.peak_mb)
    return result


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


def browser(*, repeats: int, data: str | None = None, drawings: int = 0) -> dict:
    """Cold start, click-to-image (idle and training) for the app and the floor page, mouse-up to a drawing's
    result (idle, `drawings` of them; 0: none), peak RSS."""
    from playwright.sync_api import sync_playwright

    data = data or settings.env(settings.MNIST_ENV) or None
    work = Path(tempfile.mkdtemp(prefix="aigc_bench_browser_"))
    (work / "trivial.py").write_text(TRIVIAL_PAGE)
    memory, servers, trainer, result = PeakRSS(), {}, None, {}
    memory.start()
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages, urls = {}, {}
            for name, script, cwd in (("app", ROOT / "app.py", ROOT), ("trivial page", work / "trivial.py", work)):
                start = time.perf_counter()
                servers[name], urls[name] = start_streamlit(script, cwd=cwd)
                url = urls[name]
                memory.pids[f"{name} server"] = servers[name].pid
                wait_healthy(url)
                pages[name] = chromium.new_page()
                pages[name].goto(url)
                pages[name].wait_for_function(NEW_IMAGE_JS, arg="", polling="raf", timeout=120_000)
                result[f"cold_start_s ({name})"] = time.perf_counter() - start
            result["idle"] = {name: _summary(v) for name, v in _clicks(pages, repeats).items()}
            if drawings:
                result["draw"] = draws(chromium, urls["app"], n=drawings, server_pid=servers["app"].pid)
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
    if "draw" in result:
        lines.append(render_draw(result["draw"]))
    return "\n".join(lines)


def render_draw(draw: dict) -> str:
    """The mouse-up to drawing result figures as Markdown."""
    lines = ["\n## Draw a digit in the browser (mouse-up to the drawing's whole result, ms)",
             "| drawings | median | p95 | first (cold: traces the inversion) | inversion as the page reports, median |",
             "|---|---|---|---|---|"]

    def ms(value) -> str:
        return "-" if value is None else f"{value:.0f}"

    inversion = draw.get("page_inversion_median_s")
    lines.append(f"| {draw.get('n', 0)} + 1 | {ms(draw.get('median_ms'))} | {ms(draw.get('p95_ms'))} | "
                 f"{ms(draw['first_ms'])} | {ms(None if inversion is None else inversion * 1e3)} |")
    if draw.get("read"):
        hits = sum(read == int(digit) for read, digit in zip(draw["read"], draw["drawn"]))
        lines.append(f"read as the digit drawn: {hits}/{len(draw['read'])}")
    return "\n".join(lines)
