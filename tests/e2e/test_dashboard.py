"""The dashboard in a real browser: generate a 7, a tiny job to the end, Stop, and a second page on the same job."""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: first page load imports TensorFlow and loads the generator
VIEWPORT = {"width": 1400, "height": 1500}
JOB_S = 180_000  # ms: a tiny job, trainer start-up included, on 2 busy cores


def open_view(page, server, view: str, query: str = "") -> None:
    page.goto(f"{server['url']}/{view}{query}", wait_until="domcontentloaded")
    page.get_by_test_id("stSidebar").wait_for(timeout=LOAD_S)


def markdown(page, text: str):
    return page.get_by_test_id("stMarkdownContainer").filter(has_text=text).first


def selectbox(page, label: str):
    """The visible selectbox labelled exactly `label`. A substring match also finds "Digit A" and "Digit B" in the
    collapsed Interpolate panel, hidden; a click on a hidden first match waits out its whole timeout."""
    exact = page.get_by_test_id("stWidgetLabel").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.get_by_test_id("stSelectbox").filter(has=exact).filter(visible=True).first


def selectboxes_seen(page) -> str:
    """Every selectbox's label and visibility: what a failed pick saw (CI keeps no screenshot)."""
    boxes = page.get_by_test_id("stSelectbox")
    return "; ".join(f"{(boxes.nth(i).text_content() or '').strip()[:40]!r} visible={boxes.nth(i).is_visible()}"
                     for i in range(boxes.count()))


def choose(page, label: str, option: str, *, attempts: int = 3) -> None:
    """Pick an option of a selectbox; retried because a rerun can close the open list."""
    for attempt in range(attempts):
        try:
            selectbox(page, label).click()
        except PlaywrightTimeout as error:
            raise AssertionError(f"no visible selectbox {label!r} at {page.url}: {selectboxes_seen(page)}") from error
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


def shoot(page, screenshot_dir, name: str) -> None:
    """Save the page once every image has loaded (only when $AIGC_SCREENSHOT_DIR is set)."""
    if not screenshot_dir:
        return
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
                           " && !document.querySelector('[data-testid=stSkeleton]')"
                           " && !document.querySelector('[data-testid=stStatusWidget] button')")
    page.wait_for_timeout(800)  # let plotly finish its transition
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot_dir / f"{name}.png"))


def test_generate_a_seven(page, server, screenshot_dir):
    open_view(page, server, "generate")
    page.get_by_text("x any digit").wait_for(timeout=LOAD_S)
    choose(page, "Digit", "7")
    page.get_by_label("How many").fill("500")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text(re.compile(r"How many must be a whole number from 1 to 100 \(got 500\)")).wait_for(timeout=30_000)
    page.get_by_label("How many").fill("25")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text(re.compile(r"25 x digit 7 - seed 0")).wait_for(timeout=30_000)
    page.wait_for_url(re.compile(r"/generate\?.*digit=7&n=25&seed=0"), timeout=10_000)  # a shareable link
    title = page.get_by_role("heading", name="AIGC digits").bounding_box()
    assert title["y"] < 90, title  # no empty band above the title
    source = page.get_by_test_id("stImage").first.locator("img").get_attribute("src")
    response = page.request.get(source if source.startswith("http") else server["url"] + source)
    assert response.ok and response.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(response.body())).convert("L"))
    assert picture.shape[0] == picture.shape[1] and picture.shape[0] >= 5 * 30 * 2  # 5x5, upscaled
    assert picture.std() > 10  # digits, not a blank canvas
    shoot(page, screenshot_dir, "generate")
    page.get_by_text("Interpolate between two seeds").click()
    page.get_by_text("10 frames, seed 1 to 2").wait_for(timeout=30_000)
    page.get_by_text("Download GIF").scroll_into_view_if_needed()
    shoot(page, screenshot_dir, "interpolate")
    # The same link in a fresh page shows the same grid (same media file).
    other = page.context.new_page()
    other.goto(page.url)
    other.get_by_text(re.compile(r"25 x digit 7 - seed 0")).wait_for(timeout=LOAD_S)
    assert other.get_by_test_id("stImage").first.locator("img").get_attribute("src") == source


def start_job(page, *, epochs: int, batch: str = "16") -> None:
    page.get_by_role("button", name="Start training").wait_for(timeout=LOAD_S)  # the whole page is drawn
    page.get_by_label("Epochs to add").fill(str(epochs))
    choose(page, "Batch size", batch)
    page.get_by_role("button", name="Start training").click()


def test_tiny_job_runs_live_and_finishes(page, server, screenshot_dir):
    open_view(page, server, "train")
    page.get_by_role("button", name="Start training").wait_for(timeout=LOAD_S)
    start_job(page, epochs=2)
    page.get_by_text(re.compile(r"^Started run-")).wait_for(timeout=JOB_S)
    progress = page.get_by_test_id("stProgress")
    progress.wait_for(timeout=JOB_S)
    seen = set()
    chart_seen = False
    deadline = time.time() + JOB_S / 1000
    while time.time() < deadline:
        seen.add(progress.first.inner_text())
        chart_seen = chart_seen or page.locator(".js-plotly-plot").count() > 0
        if markdown(page, "State: finished").is_visible():
            break
        time.sleep(0.5)
    assert markdown(page, "State: finished").is_visible(), seen
    assert len(seen) >= 2, f"the progress never changed while polling: {seen}"  # it updated live
    assert chart_seen and page.locator(".js-plotly-plot").count() >= 2
    page.get_by_text("new generator is ready").wait_for()
    page.get_by_text("epoch 2", exact=True).wait_for()  # the newest sample grid
    shoot(page, screenshot_dir, "train")
    logs = " ".join(p.read_text(errors="replace") for p in server["runs"].glob("*/train.log"))
    for noise in ("cuInit", "remapper failed", "absl::InitializeLog"):
        assert noise not in logs, noise  # a quiet trainer
    # The new generator is ready in Generate.
    open_view(page, server, "generate")
    choose(page, "Generator", "Newest trained run")
    page.get_by_text(re.compile(r"Newest trained run \(run-")).wait_for(timeout=LOAD_S)


def test_stop_a_longer_job_seen_from_a_second_page(page, server, browser):
    open_view(page, server, "train")
    page.get_by_role("button", name="Start training").wait_for(timeout=LOAD_S)
    start_job(page, epochs=50)
    page.get_by_text(re.compile(r"^Started run-")).wait_for(timeout=JOB_S)
    run_name = page.get_by_role("heading", name=re.compile(r"^Run run-")).first.inner_text()
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)
    context.set_default_navigation_timeout(90_000)
    second = context.new_page()
    open_view(second, server, "train")
    second.get_by_role("heading", name=run_name).wait_for(timeout=LOAD_S)
    markdown(second, "State: running").wait_for(timeout=JOB_S)
    # The other page cannot start a second job: Start is disabled, with the reason beside it.
    assert second.get_by_role("button", name="Start training").is_disabled()
    second.get_by_text("A job is running: one job at a time").wait_for(timeout=LOAD_S)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text(re.compile(r"Stopping\.\.\.")).first.wait_for(timeout=LOAD_S)  # from the click on
    markdown(page, "State: stopped").wait_for(timeout=JOB_S)
    markdown(second, "State: stopped").wait_for(timeout=JOB_S)  # the other page noticed on its own
    # Resume takes Stop's place, and says which process really trains.
    page.get_by_role("button", name=re.compile("^Resume")).click(timeout=LOAD_S)
    page.get_by_text(re.compile(r"^Resumed run-.*\(pid \d+\)")).wait_for(timeout=JOB_S)
    page.get_by_role("button", name="Stop").click(timeout=JOB_S)
    markdown(page, "State: stopped").wait_for(timeout=JOB_S)
    second.context.close()


@pytest.mark.parametrize("view", ["model"])
def test_model_view(page, server, screenshot_dir, view):
    open_view(page, server, "", "?view=model&seed=3")  # an old link lands on its page
    page.wait_for_url(re.compile(r"/model\?seed=3$"), timeout=LOAD_S)
    page.get_by_text(re.compile(r"dcgan_generator.*parameters")).wait_for(timeout=LOAD_S)
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=LOAD_S)
    page.get_by_role("columnheader", name="Property").first.wait_for()  # real table headers
    page.get_by_text("Download model card (README.md)").wait_for()
    assert page.get_by_test_id("stException").count() == 0
    shoot(page, screenshot_dir, "model")


def test_compare_runs_from_the_sidebar(page, server, screenshot_dir):
    open_view(page, server, "generate")
    page.get_by_test_id("stSidebarNav").get_by_text("Compare runs").click(timeout=LOAD_S)
    page.wait_for_url(re.compile(r"/compare"), timeout=LOAD_S)
    page.get_by_text("Settings and final quality", exact=True).wait_for(timeout=LOAD_S)
    page.locator(".js-plotly-plot").first.wait_for(timeout=LOAD_S)
    assert page.locator(".js-plotly-plot").count() == 1
    shoot(page, screenshot_dir, "compare")
    noise = server["log"].read_text(errors="replace")
    assert "cuInit" not in noise and "absl::InitializeLog" not in noise  # a quiet server
