"""Compare runs in a real browser (issue 23 item 1): the metric chooser's "Precision and recall" draws a precision and a
recall panel, each run named once in the legend with its sample count; a run logged before them is said, not drawn.

docs/compare_precision_recall.png was taken from real training runs, not from these records (see docs/app.md)."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from test_dashboard import choose

from aigc.engine.spec import RunSpec
from aigc.runs.files import atomic_write_json
from aigc.runs.layout import RunPaths

CHROMIUM = "/usr/bin/chromium"
pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")]
LOAD_S = 90_000  # ms: the first page load imports TensorFlow


def write_run(runs: Path, name: str, qualities: list[dict]) -> RunPaths:
    run = RunPaths(runs / name)
    run.metrics.parent.mkdir(parents=True, exist_ok=True)
    records = [dict(kind="epoch", step=100 * e, epoch=e, fdd=8.0 / e, digit_score=9.5, class_accuracy=0.97,
                    eval_n=2000, epoch_time_s=30.0, **quality) for e, quality in enumerate(qualities, start=1)]
    run.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
    atomic_write_json(run.config, {"spec": RunSpec.resolve(epochs=len(records)).to_dict()})
    atomic_write_json(run.status, {"state": "finished", "epoch": len(records), "total_epochs": len(records),
                                   "updated_at": time.time()})
    return run


def svg_texts(plot, selector: str) -> list[str]:
    return plot.locator(selector).evaluate_all("elements => elements.map(e => e.textContent)")


def test_compare_charts_precision_and_recall_side_by_side(page, server):
    runs = [write_run(server["runs"], "run-old", [{}, {}]),  # logged before precision and recall
            write_run(server["runs"], "run-pr", [dict(precision=0.7 + e / 50, recall=0.5 + e / 20) for e in range(3)])]
    try:
        page.goto(f"{server['url']}/compare", wait_until="domcontentloaded")
        page.get_by_text("Settings and final quality", exact=True).wait_for(timeout=LOAD_S)
        choose(page, "Metric", "Precision and recall (k = 3, 0-1, higher is better)")
        plot = page.locator(".js-plotly-plot").first
        expect(plot.locator(".annotation-text")).to_have_count(2, timeout=LOAD_S)
        panels = svg_texts(plot, ".annotation-text")
        assert panels[0].startswith("Precision") and panels[1].startswith("Recall"), panels
        # Each once for both panels; the shipped generator's training log records precision and recall per epoch
        # (since issue 23's retraining), so it is drawn too.
        assert svg_texts(plot, ".legendtext") == ["Shipped (dcgan), 2,000 samples", "run-pr, 2,000 samples"]
        unmeasured = page.get_by_text("Not measured per epoch (no curve):")
        unmeasured.wait_for()
        assert "run-old" in unmeasured.inner_text() and "run-pr" not in unmeasured.inner_text()
        page.get_by_test_id("stDataFrame").first.wait_for()  # its columns: tests/test_compare_quality.py
        assert page.get_by_test_id("stException").count() == 0
    finally:
        for run in runs:
            shutil.rmtree(run.root, ignore_errors=True)
