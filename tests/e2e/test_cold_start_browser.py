"""bench --cold-start for real: a fresh app server and a trivial page, in Chromium (issue 22's first-digits figure).

The ratio itself depends on the machine and is reported by the bench, not asserted here; that the first page needs
no model is asserted deterministically in tests/test_warm.py.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]


def test_cold_start_times_both_pages_and_the_first_clicks():
    from bench.cold_start import cold_start, render

    # A thread of its own: the session's `page` fixture keeps Playwright's sync API (an asyncio loop) in this one.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(cold_start, rounds=1, waits=(0.0,)).result()
    app, trivial = result["starts"]["app"][0], result["starts"]["trivial page"][0]
    for start in (app, trivial):
        assert 0 < start["healthy_s"] < start["first_digits_s"] < 90, start
    click = result["first_clicks"][0]
    assert click["first_click_ms"] > 0 and click["second_click_ms"] > 0  # New seed drew new digits, twice
    assert result["ratio_median"] == pytest.approx(app["first_digits_s"] / trivial["first_digits_s"])
    assert "(target <= 1.5x)" in render(result)
