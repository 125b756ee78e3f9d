"""`python -m aigc bench --cold-start [--rounds N]`: from `streamlit run` to the first digits in Chromium, the app
beside a trivial Streamlit page, N rounds alternating which starts first; then the first clicks on the cold app.

Issue 22's target: the app's first digits within 1.5x of the trivial page's cold start (median over rounds, and the
ratio per round). Each server starts fresh (a new process: nothing imported, nothing cached) and each visit opens a new
browser context (an empty HTTP cache): every start downloads Streamlit's JavaScript, as a first visit does.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.browser import (CHROMIUM, CHROMIUM_ARGS, NEW_IMAGE_JS, TRIVIAL_PAGE, _stop, click_to_image,
                           start_streamlit, wait_healthy)
from aigc.settings import ROOT

FIRST_CLICK_WAITS_S = (0.0, 5.0, 15.0)  # after the first digits: a visitor who clicks at once, soon, later


def _first_digits(browser, script: Path, cwd: Path, *, then=None) -> dict:
    """Seconds from launching the server to its health check and to the first loaded image; `then(page)` after."""
    start = time.perf_counter()
    server, url = start_streamlit(script, cwd=cwd)
    context = browser.new_context()
    try:
        wait_healthy(url)
        healthy = time.perf_counter() - start
        page = context.new_page()
        page.goto(url)
        page.wait_for_function(NEW_IMAGE_JS, arg="", polling="raf", timeout=120_000)
        result = {"healthy_s": healthy, "first_digits_s": time.perf_counter() - start}
        if then is not None:
            result.update(then(page))
        return result
    finally:
        context.close()
        _stop(server)


def cold_start(*, rounds: int = 5, waits: tuple = FIRST_CLICK_WAITS_S) -> dict:
    """Cold starts of the app and the trivial page, interleaved; then the first two clicks at three moments."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="aigc_bench_cold_"))
    (work / "trivial.py").write_text(TRIVIAL_PAGE)
    pages = {"app": (ROOT / "app.py", ROOT), "trivial page": (work / "trivial.py", work)}
    starts = {name: [] for name in pages}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for index in range(rounds):
            for name in (list(pages) if index % 2 == 0 else list(pages)[::-1]):
                starts[name].append(_first_digits(browser, *pages[name]))
        clicks = []
        for wait_s in waits:
            def click(page, wait_s=wait_s):
                time.sleep(wait_s)
                return {"wait_s": wait_s, "first_click_ms": click_to_image(page, "New seed", timeout_ms=120_000),
                        "second_click_ms": click_to_image(page, "New seed", timeout_ms=120_000)}
            clicks.append(_first_digits(browser, *pages["app"], then=click))
        browser.close()
    app, trivial = ([s["first_digits_s"] for s in starts[name]] for name in pages)
    return {"rounds": rounds, "starts": starts,
            "median_s": {name: statistics.median(s["first_digits_s"] for s in starts[name]) for name in pages},
            "ratio_median": statistics.median(app) / statistics.median(trivial),
            "ratio_per_round": [a / t for a, t in zip(app, trivial)], "first_clicks": clicks}


def render(result: dict) -> str:
    """Markdown: the two medians and the ratio, each round, the first clicks."""
    median = result["median_s"]
    lines = [f"Cold start to first digits, {result['rounds']} rounds interleaved (median): app "
             f"**{median['app']:.2f} s**, trivial Streamlit page {median['trivial page']:.2f} s: "
             f"**{result['ratio_median']:.2f}x** (target <= 1.5x)", "",
             "| round | app: healthy / first digits (s) | trivial page: healthy / first digits (s) | ratio |",
             "| --- | --- | --- | --- |"]
    for index, (app, trivial, ratio) in enumerate(zip(result["starts"]["app"], result["starts"]["trivial page"],
                                                      result["ratio_per_round"]), 1):
        lines.append(f"| {index} | {app['healthy_s']:.2f} / {app['first_digits_s']:.2f} | "
                     f"{trivial['healthy_s']:.2f} / {trivial['first_digits_s']:.2f} | {ratio:.2f}x |")
    lines += ["", "| first click (New seed) after the first digits, on a cold app | first click (ms) "
                  "| second click (ms) |",
              "| --- | --- | --- |"]
    for click in result["first_clicks"]:
        lines.append(f"| {click['wait_s']:.0f} s later (first digits at {click['first_digits_s']:.2f} s) | "
                     f"{click['first_click_ms']:.0f} | {click['second_click_ms']:.0f} |")
    return "\n".join(lines)
