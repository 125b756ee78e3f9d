"""The crowd benchmark's client speaks Streamlit's websocket protocol to the real app (loopback only)."""
from __future__ import annotations

import pytest

from aigc.settings import shipped_generator


@pytest.mark.slow
@pytest.mark.skipif(not shipped_generator().is_file(), reason="needs the shipped generator")
def test_small_crowd_on_the_real_app():
    from bench.crowd import crowd, render

    result = crowd(sessions=3, clicks=2, think_s=0.1)
    assert result["errors"] == 0, result["error_samples"]
    assert result["clicks_ok"] == 6 and 0 < result["p50_ms"] <= result["p95_ms"] <= result["max_ms"] < 30_000
    assert result["rss_start_mb"] > 100 and result["rss_peak_mb"] >= result["rss_start_mb"]
    assert 0 <= result["client_cpu_share"] < 1
    clear = result["clear_cache"]
    # Generous on a shared machine: before the fix the first rerun after a clear reloaded the generator (x3-x8).
    assert clear["first_after_clear_ms"] < 3 * clear["rerun_before_ms"] + 250, clear
    text = render(result)
    assert "p95" in text and "RSS" in text and "clear-cache" in text


@pytest.mark.slow
@pytest.mark.skipif(not shipped_generator().is_file(), reason="needs the shipped generator")
def test_a_mixed_crowd_watches_a_real_job_and_measures_the_trainer(tmp_path):
    """Issue 21: nothing measured the Train page or a mixed crowd; watchers poll the live view of a real job."""
    import numpy as np

    from aigc.engine.data import synthetic_mnist
    from bench.crowd import render
    from bench.crowd_job import crowd_with_a_job

    data = tmp_path / "mnist.npz"
    np.savez(data, **synthetic_mnist(4096, 128))  # epochs of 64 steps: step records within an epoch
    result = crowd_with_a_job(sessions=3, watchers=1, clicks=2, think_s=0.5, data=str(data), baseline_s=6, epochs=50)
    assert result["errors"] == 0, result["error_samples"]
    assert result["clicks_ok"] == 4 and result["polls"] >= 1 and 0 < result["poll_p50_ms"] < 30_000
    assert result["trainer_img_s_alone"] > 0
    text = render(result)
    assert "watching a running job" in text and "polls" in text


@pytest.mark.slow
@pytest.mark.skipif(not shipped_generator().is_file(), reason="needs the shipped generator")
def test_page_costs_time_a_big_runs_train_page_and_the_click_floor():
    from bench.page_costs import page_costs, render

    result = page_costs(polls=3, clicks=3, epochs=50, steps_per_epoch=20)
    big = result["big_run"]
    assert not big["errors"] and big["first_open_s"] > 0 and big["poll_cpu_ms"] >= 0
    assert result["trivial"]["cpu_ms"] > 0 and result["new_seed"]["cpu_ms"] > 0
    assert "trivial page" in render(result)


def test_bench_parser_takes_crowd_options():
    from aigc.cli import build_parser

    args = build_parser().parse_args(["bench", "--crowd", "50", "--clicks", "3", "--think", "1.5", "--watchers", "10"])
    assert (args.crowd, args.clicks, args.think, args.watchers) == (50, 3, 1.5, 10)
    assert build_parser().parse_args(["bench", "--page-costs"]).page_costs
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--crowd", "0"])


def test_a_coroutine_runs_even_inside_a_running_event_loop():
    """Playwright's sync API (the browser tests) leaves a loop running in the main thread for the session."""
    from bench.crowd import run_coroutine

    async def answer():
        return 42

    async def inside_a_loop():
        return run_coroutine(answer)

    async def divide_inside_a_loop():
        async def divide():
            return 1 / 0
        return run_coroutine(divide)

    assert run_coroutine(answer) == 42
    assert run_coroutine(inside_a_loop) == 42  # the inner call finds a running loop
    with pytest.raises(ZeroDivisionError):
        run_coroutine(divide_inside_a_loop)


@pytest.mark.slow
@pytest.mark.skipif(not shipped_generator().is_file(), reason="needs the shipped generator")
def test_a_short_password_attack_never_locks_out_the_owner():
    """Issue 21: 20 sessions locked the owner out for >= 33 minutes; measured over real websockets now."""
    from bench.hostile import password_attack, render_attack

    result = password_attack(attackers=3, addresses=1, minutes=0.6)
    assert result["error_count"] == 0, result["errors"]
    assert result["attempts"] > 20 and result["checked"] < result["attempts"]
    assert result["owner"] and all(o["unlocked"] and o["seconds"] < 5 for o in result["owner"]), result["owner"]
    assert "owner from another address" in render_attack(result)


@pytest.mark.slow
@pytest.mark.skipif(not shipped_generator().is_file(), reason="needs the shipped generator")
def test_forged_canvases_are_refused_with_a_sentence_and_an_oversized_one_closes_the_connection():
    from bench.hostile import forged_canvases, render_canvas

    result = forged_canvases(sessions=2, settle_s=1)
    assert not result["errors"], result["errors"]
    assert any("larger than 1 MB" in said for said in result["said"]), result["said"]
    assert result["over_limit_answered"] == 0 and result["over_limit_refused"]
    assert result["rss_peak_mb"] - result["rss_start_mb"] < 200
    assert "forged canvases" in render_canvas(result)
