"""A first visit that teaches (issue 22), in a real browser: 'How this works' on every page, and on Train a look
inside the GAN (D's score per sample tile, the evaluator's feature map) of a run trained by `python -m aigc train`.

The run trains on the MNIST file that $AIGC_MNIST names, when it does (the screenshots then show real digits), else
on tiny synthetic data. With $AIGC_SCREENSHOT_DIR set (e.g. docs) the panels are saved as inside.png and
how_it_works.png.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: the first page imports TensorFlow and loads the generator
PAGES = ("generate", "write", "draw", "train", "compare", "model")


@pytest.fixture(scope="module")
def teaching_server(server, tmp_path_factory):
    """The session's live app, its newest run a finished 4-epoch one with its look-inside files."""
    from aigc.engine.data import synthetic_mnist

    data = Path(os.environ.get("AIGC_MNIST") or "-")
    if not data.is_file():
        data = tmp_path_factory.mktemp("teaching") / "mnist.npz"
        np.savez(data, **synthetic_mnist(1024, 256))
    trained = run_cli("train", "--run-dir", str(server["runs"] / "run-inside"), "--data", str(data), "--epochs", "4",
                      "--train-limit", "6400", "--batch-size", "32", "--eval-samples", "0", "--probe-seconds", "0",
                      timeout=600, env={"AIGC_RUNS_DIR": str(server["runs"])})
    assert trained.returncode == 0, trained.stdout[-2000:] + trained.stderr[-2000:]
    return server


def settled(page) -> None:
    """Every image loaded, nothing left running, plotly done drawing."""
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
                           " && !document.querySelector('[data-testid=stSkeleton]')"
                           " && !document.querySelector('[data-testid=stStatusWidget] button')")
    page.wait_for_timeout(800)


def shoot_around(page, screenshot_dir, name: str, *parts) -> None:
    """Save the part of the page that holds these locators (only when $AIGC_SCREENSHOT_DIR is set)."""
    if not screenshot_dir:
        return
    settled(page)
    boxes = [part.bounding_box() for part in parts]
    scroll_x, scroll_y = page.evaluate("() => [window.scrollX, window.scrollY]")
    x, y = max(0, min(b["x"] for b in boxes) + scroll_x - 12), min(b["y"] for b in boxes) + scroll_y - 12
    right = max(b["x"] + b["width"] for b in boxes) + scroll_x + 12
    bottom = max(b["y"] + b["height"] for b in boxes) + scroll_y + 12
    clip = {"x": x, "y": y, "width": right - x, "height": bottom - y}
    screenshot_dir.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True, clip=clip)


def test_every_page_explains_itself_collapsed_until_asked(page, teaching_server, screenshot_dir):
    for key in PAGES:
        page.goto(f"{teaching_server['url']}/{key}", wait_until="domcontentloaded")
        expander = page.locator("[data-testid=stExpander]", has_text="How this works").first
        expander.wait_for(timeout=LOAD_S)
        assert not expander.locator("[data-testid=stExpanderDetails]").is_visible(), f"{key}: open before asked"
        assert page.locator("[data-testid=stException]").count() == 0, key
    page.goto(f"{teaching_server['url']}/generate", wait_until="domcontentloaded")
    expander = page.locator("[data-testid=stExpander]", has_text="How this works").first
    expander.wait_for(timeout=LOAD_S)
    page.get_by_text("How this works").first.click()
    details = expander.locator("[data-testid=stExpanderDetails]")
    details.get_by_text("The generator", exact=False).first.wait_for()
    for words in ("discriminator", "Latent scale (truncation)", "FDD", "Class accuracy"):
        assert details.get_by_text(words, exact=False).first.is_visible(), words
    diagram = details.get_by_role("img", name="A diagram of a GAN", exact=False)  # an SVG file, shown as an image
    diagram.wait_for()
    assert diagram.evaluate("i => i.complete && i.naturalWidth") >= 400
    shoot_around(page, screenshot_dir, "how_it_works", expander)


def test_train_shows_the_discriminators_scores_and_the_map(page, teaching_server, screenshot_dir):
    page.goto(f"{teaching_server['url']}/train", wait_until="domcontentloaded")
    heading = page.get_by_text("what the discriminator thinks of each sample", exact=False)
    heading.wait_for(timeout=LOAD_S)
    tiles = page.get_by_role("img", name="Epoch 4's sample digits, each framed", exact=False)
    tiles.wait_for()
    assert tiles.evaluate("i => i.naturalWidth") >= 600  # ten framed tiles to a row
    legend = page.locator("[data-testid=stCaptionContainer]", has_text="the discriminator's probability that the tile")
    legend.wait_for()
    caption = page.get_by_text("grey dots are real digits", exact=False)
    caption.wait_for()
    plots = page.locator(".js-plotly-plot")
    plots.last.wait_for()
    assert page.locator(".js-plotly-plot .legendtext", has_text="real MNIST").count() == 1
    assert page.locator(".js-plotly-plot .legendtext", has_text="generated 7").count() == 1
    assert page.locator("[data-testid=stException]").count() == 0
    heading.evaluate("e => e.scrollIntoView({block: 'start'})")  # the main area scrolls, not the page: fit it
    columns = page.locator("[data-testid=stColumn]")
    shoot_around(page, screenshot_dir, "inside", heading, columns.filter(has=legend), columns.filter(has=caption))
    slider = page.get_by_role("slider").last
    slider.focus()
    slider.press("Home")  # the first epoch: the grid and the map follow the slider
    page.get_by_role("img", name="Epoch 1's sample digits, each framed", exact=False).wait_for()
