"""The Train page in a real browser (issue 22 items 2 and 3): a second tab follows a Resume clicked in the first, the
quality chart names its quick checks and epoch evaluations with their sample counts, the loss chart's axis title fits.

With $AIGC_SCREENSHOT_DIR set (e.g. docs) the charts are saved as train_charts.png."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from aigc.engine.spec import RunSpec
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths
from helpers import REPO

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: the first page load imports TensorFlow
JOB_S = 180_000  # ms: a trainer's start on 2 busy cores
VIEWPORT = {"width": 1400, "height": 1500}


def open_train(page, server) -> None:
    page.goto(f"{server['url']}/train", wait_until="domcontentloaded")
    page.get_by_role("button", name="Start training").wait_for(timeout=LOAD_S)  # the whole page is drawn


def state(page, text: str):
    return page.get_by_test_id("stMarkdownContainer").filter(has_text=f"State: {text}").first


def write_chart_run(runs: Path) -> RunPaths:
    """A finished run whose records have quick checks (500 samples), epoch evaluations (2,000) and precision/recall."""
    run = RunPaths(runs / "run-charts")
    records = [{"kind": "step", "step": s, "epoch": 1 + s // 100, "g_loss": 1.5 - s / 1000, "d_loss": 1.2,
                "d_real": 0.6, "d_fake": 0.4} for s in range(10, 301, 10)]
    records += [{"kind": "probe", "step": s, "epoch": s / 100, "fdd": 40.0 - s / 5, "digit_score": 8.0,
                 "class_accuracy": 0.9, "eval_n": 500} for s in (25, 50, 75)]
    records += [{"kind": "epoch", "step": 100 * e, "epoch": e, "fdd": 6.0 / e, "digit_score": 9.5, "g_loss": 1.2,
                 "d_loss": 1.2, "class_accuracy": 0.97, "precision": 0.8, "recall": 0.5 + e / 10, "eval_n": 2000}
                for e in (1, 2, 3)]
    run.metrics.parent.mkdir(parents=True, exist_ok=True)
    run.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    atomic_write_json(run.config, {"spec": RunSpec.resolve(epochs=3).to_dict()})
    now = time.time()
    atomic_write_json(run.status, {"state": "finished", "epoch": 3, "total_epochs": 3, "steps_per_epoch": 100,
                                   "step": 300, "step_in_epoch": 0, "updated_at": now, "finished_at": now})
    return run


def svg_texts(plot, selector: str) -> list[str]:
    """The text of a plot's SVG elements (SVG text has no innerText)."""
    return plot.locator(selector).evaluate_all("elements => elements.map(e => e.textContent)")


def boxes_overlap(a: dict, b: dict) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def test_quality_series_are_named_with_their_counts_and_the_loss_title_fits(page, server, screenshot_dir):
    run = write_chart_run(server["runs"])
    try:
        open_train(page, server)
        page.get_by_role("heading", name="Run run-charts").wait_for(timeout=LOAD_S)
        plots = page.locator(".js-plotly-plot")
        expect(plots).to_have_count(3, timeout=LOAD_S)
        quality = plots.nth(2)
        legend = svg_texts(quality, ".legendtext")
        assert sorted(legend) == ["end of epoch (2,000 samples)", "quick checks (500 samples)"], legend
        panels = svg_texts(quality, ".annotation-text")
        assert any(p.startswith("Precision") for p in panels) and any(p.startswith("Recall") for p in panels), panels
        loss = plots.nth(0)
        y_title, title = loss.locator(".g-ytitle").bounding_box(), loss.locator(".g-gtitle").bounding_box()
        frame = loss.bounding_box()
        assert y_title["x"] >= frame["x"] and y_title["y"] >= frame["y"], (y_title, frame)  # not cut off
        assert not boxes_overlap(y_title, title), (y_title, title)  # clear of the title and its subtitle
        if screenshot_dir:
            page.wait_for_timeout(800)  # plotly's transition
            screenshot_dir.mkdir(parents=True, exist_ok=True)
            top = plots.nth(0).bounding_box()["y"] - 10
            bottom = quality.bounding_box()["y"] + quality.bounding_box()["height"] + 10
            page.screenshot(path=str(screenshot_dir / "train_charts.png"), full_page=True,
                            clip={"x": 0, "y": top, "width": VIEWPORT["width"], "height": bottom - top})
    finally:
        shutil.rmtree(run.root, ignore_errors=True)


def write_train_more_run(runs: Path) -> RunPaths:
    """A run that trained 1 epoch more from the shipped generator (5 epochs), its epoch evaluated on 2,000 samples."""
    shipped = Path(os.environ.get("AIGC_CHECKPOINT_DIR") or REPO / "checkpoints") / "generator.keras"
    run = RunPaths(runs / "run-more")
    run.metrics.parent.mkdir(parents=True, exist_ok=True)
    run.metrics.write_text(json.dumps({"kind": "epoch", "step": 1875, "epoch": 1, "fdd": 3.0678, "digit_score": 9.9,
                                       "class_accuracy": 0.997, "eval_n": 2000, "epoch_time_s": 60.0}) + "\n")
    spec = RunSpec.resolve(epochs=1, init_from=str(shipped))
    atomic_write_json(run.config, {"spec": spec.to_dict(), "base_epochs": 5})
    shutil.copy(REPO / "checkpoints" / "generator.keras", run.generator)
    atomic_write_json(run.status, {"state": "finished", "epoch": 1, "total_epochs": 1, "updated_at": time.time()})
    return run


@pytest.mark.skipif(not (REPO / "checkpoints" / "generator_metrics.jsonl").is_file(), reason="no shipped training log")
def test_compare_continues_the_shipped_curve_and_evaluates_on_one_count(page, server, screenshot_dir):
    """Issue 22 item 3: the run was drawn at epoch 1 beside the shipped epoch 1, and 2.56 on 10,000 samples was set
    against 3.07 on 2,000 without a word."""
    run = write_train_more_run(server["runs"])
    try:
        page.goto(f"{server['url']}/compare", wait_until="domcontentloaded")
        page.get_by_text("Settings and final quality", exact=True).wait_for(timeout=LOAD_S)
        plot = page.locator(".js-plotly-plot").first
        plot.wait_for(timeout=LOAD_S)
        traces = plot.evaluate("element => element.data.map(t => [t.name, Array.from(t.x)])")
        xs = {name: x for name, x in traces}
        assert xs.get("run-more (from epoch 5), 2,000 samples") == [6], traces
        page.get_by_text("different sample counts").first.wait_for(timeout=LOAD_S)
        page.get_by_role("button", name="Re-evaluate all on this count").click()
        expect(page.get_by_text("different sample counts")).to_have_count(0, timeout=JOB_S)
        if screenshot_dir:
            page.get_by_text("Last sample grids").scroll_into_view_if_needed()
            page.wait_for_timeout(800)
            screenshot_dir.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot_dir / "compare_counts.png"))
    finally:
        shutil.rmtree(run.root, ignore_errors=True)


def test_a_second_tab_follows_a_resume_clicked_in_the_first(page, server, browser):
    """Issue 22 item 2: tab B kept showing 'State: stopped' with a Resume button after tab A resumed the run."""
    open_train(page, server)
    page.get_by_label("Epochs to add").fill("50")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"^Started run-")).wait_for(timeout=JOB_S)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    second = context.new_page()
    try:
        open_train(second, server)
        state(second, "running").wait_for(timeout=JOB_S)
        page.get_by_role("button", name="Stop").click()
        state(page, "stopped").wait_for(timeout=JOB_S)
        state(second, "stopped").wait_for(timeout=JOB_S)
        second.get_by_role("button", name=re.compile("^Resume")).wait_for(timeout=LOAD_S)
        page.get_by_role("button", name=re.compile("^Resume")).click(timeout=LOAD_S)
        page.get_by_text(re.compile(r"^Resumed run-")).wait_for(timeout=JOB_S)
        resumed = time.time()
        # B was drawn with no job running: it must notice on its own (a slow poll), not after a reload.
        second.get_by_role("button", name="Stop").wait_for(timeout=60_000)
        assert second.get_by_role("button", name=re.compile("^Resume")).count() == 0
        assert second.get_by_role("button", name="Start training").is_disabled()
        print(f"tab B showed the resumed job {time.time() - resumed:.1f} s after tab A's Resume was confirmed")
        page.get_by_role("button", name="Stop").click(timeout=JOB_S)
        state(page, "stopped").wait_for(timeout=JOB_S)
    finally:
        context.close()
