"""Generate in a real browser: what a person sees after a forged link and numbers the grid cannot show (issue 22)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: the first page imports TensorFlow and loads the generator


def test_generate_says_what_it_shows_and_describes_every_image(page, server):
    page.goto(f"{server['url']}/generate?digit=%D9%A7&n=%C2%B2&seed=3", wait_until="domcontentloaded")  # ٧ and ²
    page.get_by_text(re.compile(r"16 x any digit - seed 3 ")).wait_for(timeout=LOAD_S)
    page.get_by_text(re.compile(r"Link parameters ignored: digit=")).wait_for()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=stMain] img').length >= 4")
    alts = page.eval_on_selector_all("[data-testid=stMain] img", "images => images.map(image => image.alt)")
    assert alts and all(alt.strip() for alt in alts), alts  # a screen reader hears what each picture is
    page.get_by_label("How many").fill("2.5")
    page.get_by_label("Seed", exact=True).fill("3000000000")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("(got 2.5): showing 2.").wait_for()
    page.get_by_text("(got 3000000000): showing seed 2147483647.").wait_for()
    page.get_by_text(re.compile(r"^2 x any digit - seed 2147483647 ")).wait_for()
    assert page.get_by_label("How many").input_value() == "2"  # the field agrees with the grid (it showed 3)
    assert "seed=2147483647" in page.url and "%D9" not in page.url and "%C2" not in page.url
