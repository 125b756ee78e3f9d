"""Draw a digit and Write a number in a real browser (issue 22): a hand that cannot be pinned, the canvas's toolbar
and Clear, a dot that says draw bigger, a cut text, the last result kept, the result first on a phone, alt texts."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect
from test_dashboard import choose
from test_explore_browser import _shoot

from bench.draw import draws, stroke

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: the first page imports TensorFlow and loads the generator
PHONE = {"width": 390, "height": 844}


def _open(page, server, query: str) -> None:
    page.goto(f"{server['url']}/?{query}", wait_until="domcontentloaded")
    page.get_by_test_id("stSidebar").wait_for(state="attached", timeout=LOAD_S)  # collapsed (hidden) on a phone


def _stroke(page, points) -> None:
    """Draw one stroke through canvas points (x, y in canvas pixels): the bench's stroke (bench/draw.py)."""
    stroke(page, points, steps=15, timeout_ms=LOAD_S)


def _draw_seven(page) -> None:
    _stroke(page, [(90, 60), (190, 62), (120, 240)])


def _result(page):
    """Draw's result area (the page's explanations above also speak of what the evaluator reads)."""
    return page.locator(".st-key-draw_result")


def _page_top(page, locator) -> float:
    """The element's top in page pixels (from the top of the document, whatever the scroll)."""
    return locator.evaluate("e => e.getBoundingClientRect().top + window.scrollY")


def _alts(page) -> list[str]:
    return page.eval_on_selector_all("[data-testid=stMain] img", "images => images.map(i => i.alt || '')")


def test_a_one_inverted_as_a_six_cannot_be_pinned(page, server, screenshot_dir):
    """The hand found for a 1 searched as a 6 writes a 1 for nearly every label with the shipped generator. (The
    generator before issue 23's retraining did so for a 1 searched as an 8; the new one writes 7 of 10 right from
    that hand, so the 8 no longer shows the refusal.)"""
    _open(page, server, "view=draw")
    page.get_by_text("Draw a digit on the canvas").wait_for(timeout=LOAD_S)
    _stroke(page, [(140, 50), (142, 250)])  # a "1" (the hidden toolbar lies over the top 2 rem until hovered)
    _result(page).get_by_text("The evaluator reads a 1").wait_for(timeout=60_000)
    choose(page, "Invert as", "6")
    page.get_by_text(re.compile(r"the GAN's 6")).wait_for(timeout=60_000)
    page.get_by_text(re.compile("This hand cannot be pinned: it does not write the ten digits")).wait_for(timeout=30_000)
    assert page.get_by_text(re.compile(r"invert the drawing as the digit you drew \(the evaluator reads 1\)")).count() == 1
    assert page.get_by_role("button", name="Pin this hand for Write a number").is_disabled()
    _shoot(page, screenshot_dir, "draw_refused_pin")


def test_the_toolbar_leaves_the_instructions_readable_and_clear_empties_the_canvas(page, server, screenshot_dir):
    _open(page, server, "view=draw")
    page.get_by_text("Draw a digit on the canvas").wait_for(timeout=LOAD_S)
    instructions = page.get_by_text("Draw one digit", exact=False).first
    canvas = page.locator("canvas.upper-canvas").first
    canvas.hover()
    toolbar = page.locator(".dc-toolbar").first
    page.wait_for_timeout(600)  # the toolbar slides in on hover
    tool, text = toolbar.bounding_box(), instructions.bounding_box()
    overlap = not (tool["x"] + tool["width"] <= text["x"] or text["x"] + text["width"] <= tool["x"]
                   or tool["y"] + tool["height"] <= text["y"] or text["y"] + text["height"] <= tool["y"])
    assert not overlap, (tool, text)
    _shoot(page, screenshot_dir, "draw_toolbar")
    _draw_seven(page)
    _result(page).get_by_text("The evaluator reads a 7").wait_for(timeout=60_000)
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit on the canvas").wait_for(timeout=30_000)
    expect(_result(page).get_by_text("The evaluator reads")).to_have_count(0, timeout=30_000)


def test_the_bench_times_drawings_to_their_whole_result(browser, server):
    """bench --only-draw's measurement (bench/draw.py), two drawings against the test server: each timed from
    mouse-up to its own result (the reading and four new, loaded images), the canvas cleared between them."""
    result = draws(browser, server["url"], n=2)
    assert result["drawn"] == ["7", "1"] and len(result["ms"]) == 2 and result["n"] == 1
    assert 0 < result["median_ms"] < 60_000 and result["first_ms"] > 0
    assert all(seconds is not None for seconds in result["page_inversion_s"]) and None not in result["read"]


def test_a_tiny_dot_says_draw_bigger(page, server, screenshot_dir):
    _open(page, server, "view=draw")
    page.get_by_text("Draw a digit on the canvas").wait_for(timeout=LOAD_S)
    _stroke(page, [(140, 140), (142, 141)])
    page.get_by_text(re.compile("Draw bigger")).wait_for(timeout=60_000)
    expect(_result(page).get_by_text("The evaluator reads")).to_have_count(0, timeout=30_000)
    _shoot(page, screenshot_dir, "draw_bigger")


def test_write_says_the_text_was_cut_and_keeps_the_last_result(page, server, screenshot_dir):
    _open(page, server, "view=write&text=2026&rows=3&seed=4")
    page.get_by_text(re.compile(r"'2026' in 3 hands - seed 4")).wait_for(timeout=LOAD_S)
    page.get_by_label("Number", exact=True).fill("7" * 500)
    page.get_by_role("button", name="Write", exact=True).click()
    page.get_by_text("The text had 500 characters: it was cut to its first 64.").wait_for(timeout=30_000)
    page.get_by_label("Number", exact=True).fill("12ab")
    page.get_by_role("button", name="Write", exact=True).click()
    page.get_by_text("Digits 0-9 only: 'a' is not a digit.").wait_for(timeout=30_000)
    page.get_by_text(re.compile("Still showing the last number written, '2026'")).wait_for(timeout=30_000)
    assert page.get_by_test_id("stImage").filter(has_text="'2026' in 3 hands").count() == 1
    opacity = page.locator(".st-key-write_result").evaluate("e => getComputedStyle(e).opacity")
    assert float(opacity) < 0.8
    _shoot(page, screenshot_dir, "write_kept")


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    context.set_default_timeout(60_000)
    yield context.new_page()
    context.close()


@pytest.mark.parametrize("view, result", [("generate&digit=3&n=16", "16 x digit 3"), ("write", "' in 3 hands")])
def test_on_a_phone_the_result_comes_first(phone, server, screenshot_dir, view, result):
    _open(phone, server, f"view={view}")
    image = phone.get_by_test_id("stImage").filter(has_text=result).first
    image.wait_for(timeout=LOAD_S)
    assert _page_top(phone, image) < PHONE["height"] - 100, "the result is below the first screen"
    _shoot(phone, screenshot_dir, f"phone_{view.split('&')[0]}")


def test_on_a_phone_a_drawings_result_comes_first_and_every_image_has_alt_text(phone, server, screenshot_dir):
    _open(phone, server, "view=draw")
    phone.get_by_text("Draw a digit on the canvas").wait_for(timeout=LOAD_S)
    _draw_seven(phone)
    phone.get_by_text("Your handwriting for all ten digits").wait_for(timeout=60_000)
    drawing = phone.get_by_test_id("stImage").filter(has_text="your drawing, MNIST-style").first
    assert _page_top(phone, drawing) < PHONE["height"] - 100, "the result is below the first screen"
    phone.evaluate("window.scrollTo(0, 0)")
    _shoot(phone, screenshot_dir, "phone_draw")
    alts = _alts(phone)
    assert len(alts) >= 4 and all(alt.strip() for alt in alts), alts


def test_every_image_on_write_has_alt_text(page, server):
    _open(page, server, "view=write&text=2026&rows=3&seed=4")
    page.get_by_text(re.compile(r"'2026' in 3 hands - seed 4")).wait_for(timeout=LOAD_S)
    page.get_by_text("Each digit as the evaluator reads it").click()
    page.wait_for_timeout(500)
    alts = _alts(page)
    assert len(alts) >= 5 and all(alt.strip() for alt in alts), alts
