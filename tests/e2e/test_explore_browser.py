"""Explore views in a real browser: write a number from a link, draw a digit on the canvas, forged link values."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: the first page imports TensorFlow and loads the generator


def _open(page, server, query: str) -> None:
    page.goto(f"{server['url']}/?{query}", wait_until="domcontentloaded")
    page.get_by_test_id("stSidebar").wait_for(timeout=LOAD_S)


def _image(page, server, locator, mode: str = "L") -> np.ndarray:
    """The PNG behind an st.image element as a gray (H, W) (or RGB (H, W, 3)) array."""
    source = locator.locator("img").get_attribute("src")
    response = page.request.get(source if source.startswith("http") else server["url"] + source)
    assert response.ok
    return np.asarray(Image.open(io.BytesIO(response.body())).convert(mode))


def _shoot(page, screenshot_dir, name: str) -> None:
    if not screenshot_dir:
        return
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
                           " && !document.querySelector('[data-testid=stStatusWidget] button')")
    page.wait_for_timeout(800)
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)


def _copied_link(page) -> str:
    """The link in the Copy link popover (opened here: its code box loads only then)."""
    page.get_by_role("button", name="Copy link").last.click()
    box = page.get_by_test_id("stCode").last
    box.wait_for(timeout=10_000)
    link = box.inner_text()
    page.keyboard.press("Escape")
    return link


def test_write_a_number_from_a_link_and_type_another(page, server, screenshot_dir):
    _open(page, server, "view=write&text=2026&rows=3&seed=4&slant=1")
    page.get_by_text(re.compile(r"'2026' in 3 hands - seed 4")).wait_for(timeout=LOAD_S)
    page.get_by_text(re.compile(r"Evaluator: \d+/12 read as asked")).wait_for(timeout=30_000)
    picture = _image(page, server, page.get_by_test_id("stImage").filter(has_text="in 3 hands").first)
    assert picture.shape[0] > 3 * 28 * 4 and picture.shape[1] < picture.shape[0] * 3  # 3 rows, tight spacing
    _shoot(page, screenshot_dir, "write")
    page.get_by_label("Number", exact=True).fill("31415926")
    page.get_by_role("button", name="Write", exact=True).click()
    page.get_by_text(re.compile(r"'31415926' in 3 hands")).wait_for(timeout=30_000)
    page.wait_for_url(re.compile(r"text=31415926&rows=3&seed=4"), timeout=10_000)
    assert "slant=1" in page.url
    link = _copied_link(page)
    assert "/write?" in link and "view=" not in link and "text=31415926" in link and link.startswith("http")
    page.get_by_label("Number", exact=True).fill("12ab")
    page.get_by_role("button", name="Write", exact=True).click()
    page.get_by_text("Digits 0-9 only: 'a' is not a digit.").wait_for(timeout=30_000)


def test_forged_write_link_gets_one_line_per_value(page, server):
    _open(page, server, "view=write&text=%3Cb%3Ex&rows=999&seed=-3&ink=nan&scale=9")
    page.get_by_text(re.compile(r"'2026' in 3 hands - seed 0")).wait_for(timeout=LOAD_S)
    for text in ("text=", "rows=", "seed=", "ink=", "scale="):
        assert page.get_by_text(re.compile(rf"Link parameter ignored: {re.escape(text)}")).count() == 1
    assert page.get_by_text("Traceback").count() == 0


def _draw_seven(page) -> None:
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=LOAD_S)
    box = canvas.bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 90, y + 60)
    page.mouse.down()
    page.mouse.move(x + 190, y + 62, steps=12)
    page.mouse.move(x + 120, y + 240, steps=20)
    page.mouse.up()


def test_draw_a_digit_and_see_it_in_the_gans_hand(page, server, screenshot_dir):
    _open(page, server, "view=draw")
    page.get_by_text("Draw a digit on the canvas").wait_for(timeout=LOAD_S)
    _draw_seven(page)
    page.get_by_text("The evaluator reads a 7").wait_for(timeout=60_000)
    page.get_by_text("Your handwriting for all ten digits").wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"Evaluator: \d+/10 read as asked")).wait_for(timeout=30_000)
    images = page.get_by_test_id("stImage")
    drawing = _image(page, server, images.filter(has_text="your drawing, MNIST-style").first)
    gan = _image(page, server, images.filter(has_text="the GAN's 7").first)
    assert drawing.shape == gan.shape and drawing.std() > 20 and gan.std() > 20
    assert np.corrcoef(drawing.ravel(), gan.ravel())[0, 1] > 0.5  # the GAN's version looks like the drawing
    _shoot(page, screenshot_dir, "draw")
    page.get_by_role("button", name="Pin this hand for Write a number").click()
    page.get_by_text("Pinned: Write a number").wait_for(timeout=30_000)
    page.get_by_test_id("stSidebar").get_by_text("Write a number").click()
    page.get_by_text("Row 1 in my pinned hand").wait_for(timeout=30_000)


def test_generate_flags_broken_digits_and_keeps_scale_in_the_link(page, server, screenshot_dir):
    _open(page, server, "view=generate&digit=8&n=16&seed=0&scale=2&slant=0.5")
    page.get_by_text(re.compile(r"16 x digit 8 - seed 0 - scale 2.00")).wait_for(timeout=LOAD_S)
    summary = page.get_by_text(re.compile(r"read as an 8 \(calibrated mean confidence >?\d+%\); (\d+) flagged"))
    summary.wait_for(timeout=30_000)
    assert int(re.search(r"; (\d+) flagged", summary.inner_text()).group(1)) >= 4  # the four blobs, at least
    rgb = _image(page, server, page.get_by_test_id("stImage").filter(has_text="16 x digit 8").first, "RGB").astype(int)
    assert ((rgb[..., 0] > 200) & (rgb[..., 1] < 90)).sum() > 500  # red frames around flagged tiles
    assert "scale=2" in page.url and "slant=0.5" in page.url
    link = _copied_link(page)
    assert "scale=2" in link and "digit=8" in link and "generator=" in link
    _shoot(page, screenshot_dir, "generate_flags")


def test_clicking_a_tile_pins_its_hand_for_interpolate_and_write(page, server, screenshot_dir):
    """Issue 12: clicking a tile pins its latent; it becomes an interpolation end and Write a number's row 1."""
    _open(page, server, "view=generate&digit=7&n=9&seed=3")
    page.get_by_text(re.compile(r"9 x digit 7 - seed 3")).wait_for(timeout=LOAD_S)
    page.get_by_text("Pin a tile's hand: click a tile").click()
    chart = page.get_by_test_id("stPlotlyChart").locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    # Plotly draws first; Streamlit's selection handler is attached after: wait until the figure listens for it.
    # (The figure is looked up on every poll: a rerun may replace it.)
    page.wait_for_function("() => { const gd = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');"
                           " return !!(gd && gd._ev && gd._ev._events && gd._ev._events.plotly_selected); }",
                           timeout=30_000)
    box = chart.bounding_box()
    # 9 tiles in 3 columns: tile 5 is the middle one; the figure has no margins, so fractions of its box are tiles
    chart.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
    # exact: the toast "tile 5 pinned (a 7): ..." shows at the same time (get_by_text is a case-blind substring match)
    page.get_by_text("Tile 5 pinned", exact=True).wait_for(timeout=30_000)
    page.get_by_text("Interpolate between two seeds / digits").click()
    page.get_by_text(re.compile(r"frames, my pinned tile \(a 7\) to seed 2")).wait_for(timeout=30_000)
    _shoot(page, screenshot_dir, "generate_pin")
    page.get_by_test_id("stSidebar").get_by_text("Write a number").click()
    page.get_by_text("Row 1 in my pinned hand").wait_for(timeout=30_000)
