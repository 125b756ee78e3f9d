"""Caches a visitor cannot empty (generator per process) and grids shared across sessions, bounded in memory."""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from aigc.app import frame
from aigc.app.pages import generate as view_generate
from aigc.serve import generators
from aigc.serve.caches import ProcessCache


def clear_cache_message() -> None:
    """What Streamlit does for a websocket clear_cache BackMsg (AppSession._handle_clear_cache_request)."""
    from streamlit.runtime import caching

    caching.cache_data.clear()
    caching.cache_resource.clear()


def test_lru_bound_by_entries_and_bytes():
    cache = ProcessCache(max_entries=3, max_bytes=100, size_of=len)
    for key in "abc":
        cache.get_or_make(key, lambda key=key: key * 10)
    cache.get_or_make("a", lambda: "never")  # a is now the most recent
    cache.get_or_make("d", lambda: "d" * 10)
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    cache.get_or_make("big", lambda: "x" * 95)  # pushes the others out to stay within 100 bytes
    assert cache.bytes <= 100 and "big" in cache and len(cache) == 1
    assert cache.get_or_make("huge", lambda: "y" * 500) == "y" * 500 and "huge" not in cache


def test_concurrent_callers_compute_once():
    cache, calls = ProcessCache(max_entries=4), []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return "grid"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_make("k", slow))) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["grid"] * 10 and len(calls) == 1


def test_a_failed_make_is_not_cached_and_waiters_retry():
    cache = ProcessCache(max_entries=2)
    with pytest.raises(ValueError):
        cache.get_or_make("k", lambda: (_ for _ in ()).throw(ValueError("bad file")))
    assert cache.get_or_make("k", lambda: 5) == 5


def test_generator_survives_a_clear_cache_message(tmp_path, monkeypatch):
    """Issue 11: any visitor's clear-cache message emptied st.cache_resource: the generator reloaded for everyone."""
    loads = []
    monkeypatch.setattr(generators, "load_generator", lambda path: loads.append(path) or ("model", "config", {}))
    monkeypatch.setattr(generators, "GENERATORS", ProcessCache(max_entries=6))
    path = tmp_path / "generator.keras"
    path.write_bytes(b"weights")
    assert generators.load_served(path) == ("model", "config", {})
    clear_cache_message()
    generators.load_served(path)
    assert len(loads) == 1
    path.write_bytes(b"retrained weights")  # a new mtime is a new key: a retrained file is picked up
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    generators.load_served(path)
    assert len(loads) == 2


def test_evaluator_survives_a_clear_cache_message(monkeypatch):
    """The evaluator is cached per (path, mtime) by the quality module itself (process-level, not st.cache)."""
    from aigc.quality import metrics

    if not metrics.evaluator_available():
        pytest.skip("no shipped evaluator")
    first = metrics.load_evaluator()
    clear_cache_message()
    assert metrics.load_evaluator() is first


def fake_served(tmp_path: Path):
    path = tmp_path / "generator.keras"
    path.write_bytes(b"weights")
    return SimpleNamespace(path=path, model=object(), config=SimpleNamespace(conditional=True))


def test_grids_are_computed_once_across_sessions(tmp_path, monkeypatch):
    """Issue 11: a shared link made every visitor run the generator for the same grid."""
    calls = []

    def fake_generate(model, n, digit, *, seed, truncation, config):
        calls.append((n, digit, seed))
        rng = np.random.default_rng(seed)
        return rng.random((n, 28, 28), dtype=np.float32), np.zeros(n, np.int32)

    monkeypatch.setattr(view_generate, "generate", fake_generate)
    monkeypatch.setattr(view_generate, "GRIDS", ProcessCache(max_entries=100, max_bytes=2**20,
                                                             size_of=lambda v: v[0].nbytes + len(v[1])))
    served = fake_served(tmp_path)
    values = {"digit": 7, "n": 16, "seed": 3, "truncation": 1.0}
    first = view_generate.rendered_grid(served, values)
    clear_cache_message()
    second = view_generate.rendered_grid(served, dict(values))  # another session, same link
    assert len(calls) == 1 and first[1] == second[1] and first[2] == second[2] == 4
    assert first[1].startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        first[0][0, 0, 0] = 1.0  # the shared images are read-only
    view_generate.rendered_grid(served, dict(values, seed=4))
    assert len(calls) == 2


@pytest.mark.slow
def test_grid_cache_stays_within_its_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(view_generate, "generate", lambda model, n, digit, *, seed, truncation, config: (
        np.full((n, 28, 28), seed % 7 / 7, np.float32), np.zeros(n, np.int32)))
    budget = 2 * 2**20
    monkeypatch.setattr(view_generate, "GRIDS", ProcessCache(max_entries=1000, max_bytes=budget,
                                                             size_of=lambda v: v[0].nbytes + len(v[1])))
    served = fake_served(tmp_path)
    for seed in range(60):  # 60 x 100 images x 3 KB = 19 MB unbounded
        view_generate.rendered_grid(served, {"digit": None, "n": 100, "seed": seed, "truncation": 1.0})
    assert view_generate.GRIDS.bytes <= budget and 0 < len(view_generate.GRIDS) < 60


def counting(calls: list, value):
    """A stand-in for an expensive function: records each call, returns value."""
    return lambda *args, **kwargs: calls.append(1) or value


def survives_a_clear(calls: list, compute) -> None:
    """compute() twice with a clear-cache message between: the expensive work ran once."""
    first = compute()
    clear_cache_message()
    assert compute() is first or np.array_equal(np.asarray(compute()[0]), np.asarray(first[0]))
    assert len(calls) == 1, f"recomputed after a clear-cache message: {len(calls)} calls"


def test_interpolations_and_training_images_survive_a_clear_cache_message(tmp_path, monkeypatch):
    """Issue 11: view_generate's interpolation media and MNIST training set were st.cache_* (any visitor emptied them)."""
    from aigc.engine import data
    from aigc.engine.data import synthetic_mnist

    calls = []
    monkeypatch.setattr(view_generate, "INTERPOLATIONS", ProcessCache(max_entries=4))
    monkeypatch.setattr(view_generate, "interpolate", counting(calls, np.zeros((4, 28, 28), np.float32)))
    served = fake_served(tmp_path)
    survives_a_clear(calls, lambda: view_generate.interpolation_media(served, seed_a=1, seed_b=2, steps=4))
    view_generate.interpolation_media(served, seed_a=1, seed_b=3, steps=4)  # another setting, another entry
    assert len(calls) == 2
    np.savez(tmp_path / "mnist.npz", **synthetic_mnist(64, 16))
    loads, real = [], data.load_mnist
    monkeypatch.setattr(data, "load_mnist", lambda path: loads.append(path) or real(path))
    monkeypatch.setattr(view_generate, "TRAINING_SETS", ProcessCache(max_entries=1))
    survives_a_clear(loads, lambda: view_generate.training_images(tmp_path / "mnist.npz"))


def test_discriminator_and_directions_survive_a_clear_cache_message(tmp_path, monkeypatch):
    """view_model's discriminator and the Explore style directions are process-level, per config / per (file, mtime)."""
    from aigc.app import widgets as explore_ui
    from aigc.app.pages import model as view_model
    from aigc.engine import models
    from aigc.engine.spec import ModelConfig
    from aigc.explore import directions

    calls = []
    monkeypatch.setattr(view_model, "DISCRIMINATORS", ProcessCache(max_entries=2))
    monkeypatch.setattr(models, "build_discriminator", counting(calls, ("discriminator",)))
    survives_a_clear(calls, lambda: view_model.discriminator_of(ModelConfig().to_json()))
    fits = []
    monkeypatch.setattr(explore_ui, "DIRECTIONS", ProcessCache(max_entries=2))
    monkeypatch.setattr(directions, "directions_for", counting(fits, ("vectors",)))
    served = fake_served(tmp_path)
    survives_a_clear(fits, lambda: explore_ui.directions_of(served))


def test_written_numbers_and_inversions_survive_a_clear_cache_message(tmp_path, monkeypatch):
    """Write a number's pages and Draw a digit's inversions were st.cache_data: now process-level, bounded."""
    from aigc.app.pages import draw as view_draw, write as view_write
    from aigc.explore import invert
    from aigc.quality import metrics

    calls = []
    monkeypatch.setattr(view_write, "WRITTEN", ProcessCache(max_entries=2))
    monkeypatch.setattr(view_write, "write_number", counting(calls, (np.zeros((1, 4, 28, 28)), np.zeros((28, 112)))))
    served = fake_served(tmp_path)
    survives_a_clear(calls, lambda: view_write.written(served, "2026", 1, 0, 1.0, (0.0,) * 3, None))
    result = SimpleNamespace(z=np.zeros(8, np.float32), image=np.zeros((28, 28), np.float32), pixel_error=0.1, seconds=1.0)
    inversions = []
    monkeypatch.setattr(view_draw, "INVERSIONS", ProcessCache(max_entries=2))
    monkeypatch.setattr(invert, "invert", counting(inversions, result))
    monkeypatch.setattr(metrics, "load_evaluator", lambda: SimpleNamespace(model="evaluator"))
    drawing = np.zeros((28, 28), np.float32)
    survives_a_clear(inversions, lambda: view_draw.inverted(served, drawing, 3))
    view_draw.inverted(served, drawing, 4)  # another label, another search
    assert len(inversions) == 2


def test_the_app_keeps_nothing_in_streamlit_caches():
    """Every cache of the app is process-level: no st.cache_data / st.cache_resource a visitor could empty."""
    root = Path(__file__).resolve().parent.parent
    use = re.compile(r"st\.cache_(data|resource)\s*[(.]|@st\.cache")  # a decorator, a call or .clear(): not prose
    offenders = [f"{path.relative_to(root)}:{number}" for path in [root / "app.py", *(root / "aigc").rglob("*.py")]
                 for number, line in enumerate(path.read_text().splitlines(), 1) if use.search(line.split("#")[0])]
    assert not offenders, offenders


def test_the_heap_is_frozen_once_without_walking_it_on_every_run(monkeypatch):
    """gc.get_freeze_count() walks every frozen object with the GIL held: it cost ~40 ms a click under a crowd."""
    calls = []
    fake_gc = SimpleNamespace(collect=lambda: calls.append("collect"), freeze=lambda: calls.append("freeze"),
                              get_freeze_count=lambda: pytest.fail("walks the whole frozen heap on every run"))
    monkeypatch.setattr(frame, "gc", fake_gc)
    monkeypatch.setattr(frame, "_FROZEN", threading.Event())
    for _ in range(3):
        frame.freeze_startup_heap()
    assert calls == ["collect", "freeze"]
