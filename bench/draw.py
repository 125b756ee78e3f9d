"""Mouse-up to a drawing's result: `python -m aigc bench --only-draw` (alone) and part of `bench --browser`.

On /draw in Chromium, one stroke with page.mouse (down, moves, up); timed from releasing the mouse to the
whole result of that drawing shown: the reading and every image of the result area new and loaded. The
drawings differ (no cache answers them), the canvas is cleared between them with the page's Clear, and the
first (it traces the inversion and builds its bank) is reported apart from the median and p95 of the others.
"""
from __future__ import annotations

import re
import sys
import time

import numpy as np

from bench.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, PeakRSS, _stop, _summary, start_streamlit, wait_healthy
from bench.crowd import wait_idle

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


def stroke(page, points, *, steps: int = 8, timeout_ms: int = 60_000) -> float:
    """Draw one stroke through `points` (canvas pixels) with the mouse: down, moves of `steps` each, up; returns
    time.perf_counter() at the mouse-up."""
    canvas = _canvas(page)
    canvas.wait_for(timeout=timeout_ms)
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=steps)
    up = time.perf_counter()
    page.mouse.up()
    return up


def draw_to_result(page, points, *, timeout_ms: int = 60_000) -> float:
    """Milliseconds from mouse-up after one stroke through `points` (canvas pixels) to that drawing's whole result."""
    old = page.evaluate(DRAW_SOURCES_JS)
    start = stroke(page, points, timeout_ms=timeout_ms)
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
    read = re.search(r"The evaluator reads an? (\d)", text)
    seconds = re.search(r"the GAN's \d \(pixel MSE [\d.]+, ([\d.]+) s\)", text)
    return (int(read.group(1)) if read else None), (float(seconds.group(1)) if seconds else None)


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
