"""The server's caches (aigc/serve/caches.py): bounded, shared across sessions, emptied by no visitor's clear-cache."""
from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import streamlit as st

from aigc.app import frame, widgets
from aigc.app.pages import draw as view_draw, generate as view_generate, model as view_model, write as view_write
from aigc.serve import caches, generators
from aigc.serve.caches import ProcessCache


@pytest.fixture(autouse=True)
def empty_server_caches():
    """The real module-level caches, empty before and after each test here."""
    caches.clear_all()
    yield
    caches.clear_all()


_CANARY_CALLS = []


@st.cache_resource
def _streamlit_cached() -> object:
    """What a page would hold if it used st.cache_resource: the canary proving a clear really happened."""
    _CANARY_CALLS.append(1)
    return object()


def clear_cache_message() -> None:
    """Streamlit's own handler of a visitor's clear_cache websocket message (AppSession._handle_clear_cache_request)."""
    from streamlit.runtime.app_session import AppSession

    canary = _streamlit_cached()
    AppSession._handle_clear_cache_request(SimpleNamespace(_session_state=SimpleNamespace(clear=lambda: None)))
    assert _streamlit_cached() is not canary, "the clear-cache message left Streamlit's caches alone"


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


def fake_served(tmp_path: Path):
    path = tmp_path / "generator.keras"
    path.write_bytes(b"weights")
    return SimpleNamespace(path=path, model=object(), config=SimpleNamespace(conditional=True), latent_dim=100)


def spy(calls: list, value):
    """A stand-in for an expensive function: records each call, returns value."""
    return lambda *args, **kwargs: calls.append(args) or value


# Per cache of caches.ALL: (tmp_path, monkeypatch, calls) -> compute(), the page's own function that fills it,
# with only the expensive work replaced by a spy (or wrapped: training_sets reads a real file).
def _generators(tmp_path, monkeypatch, calls):
    monkeypatch.setattr(generators, "load_generator", spy(calls, ("model", "config", {})))
    path = fake_served(tmp_path).path
    return lambda: generators.load_served(path)


def _directions(tmp_path, monkeypatch, calls):
    from aigc.explore import directions

    monkeypatch.setattr(directions, "directions_for", spy(calls, SimpleNamespace(vectors="fitted")))
    served = fake_served(tmp_path)
    return lambda: widgets.directions_of(served)


def _discriminators(tmp_path, monkeypatch, calls):
    from aigc.engine import models
    from aigc.engine.spec import ModelConfig

    monkeypatch.setattr(models, "build_discriminator", spy(calls, SimpleNamespace(name="discriminator")))
    return lambda: view_model.discriminator_of(ModelConfig().to_json())


def _fake_generate(calls):
    def generate(model, n, digit, *, seed, truncation, config):
        calls.append((n, digit, seed))
        return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32), np.zeros(n, np.int32)
    return generate


def _grids(tmp_path, monkeypatch, calls):
    monkeypatch.setattr(view_generate, "generate", _fake_generate(calls))
    served = fake_served(tmp_path)
    return lambda: view_generate.rendered_grid(served, {"digit": 7, "n": 16, "seed": 3, "truncation": 1.0})


def _previews(tmp_path, monkeypatch, calls):
    from aigc.explore import directions

    names = list(directions.NAMES)
    monkeypatch.setattr(widgets, "directions_of", lambda served: SimpleNamespace(names=names,
                                                                                 vectors=np.eye(len(names), 8)))
    monkeypatch.setattr(widgets, "run_generator", spy(calls, np.zeros((len(names) * len(widgets.PREVIEW_VALUES),
                                                                       28, 28), np.float32)))
    served = fake_served(tmp_path)
    return lambda: widgets.preview_pngs(served, np.zeros(8, np.float32), 3)


def _interpolations(tmp_path, monkeypatch, calls):
    monkeypatch.setattr(view_generate, "interpolate", spy(calls, np.zeros((4, 28, 28), np.float32)))
    served = fake_served(tmp_path)
    return lambda: view_generate.interpolation_media(served, seed_a=1, seed_b=2, steps=4)


def _written(tmp_path, monkeypatch, calls):
    monkeypatch.setattr(view_write, "write_number", spy(calls, (np.zeros((1, 4, 28, 28)), np.zeros((28, 112)))))
    served = fake_served(tmp_path)
    return lambda: view_write.written(served, "2026", 1, 0, 1.0, (0.0,) * 3, None)


def _inversions(tmp_path, monkeypatch, calls):
    from aigc.explore import invert
    from aigc.quality import metrics

    result = SimpleNamespace(z=np.zeros(8, np.float32), image=np.zeros((28, 28), np.float32), pixel_error=0.1,
                             seconds=1.0)
    monkeypatch.setattr(invert, "invert", spy(calls, result))
    monkeypatch.setattr(metrics, "load_evaluator", lambda: SimpleNamespace(model="evaluator"))
    served, drawing = fake_served(tmp_path), np.zeros((28, 28), np.float32)
    return lambda: view_draw.inverted(served, drawing, 3)


def _training_sets(tmp_path, monkeypatch, calls):
    from aigc.engine import data

    np.savez(tmp_path / "mnist.npz", **data.synthetic_mnist(64, 16))
    real = data.load_mnist
    monkeypatch.setattr(data, "load_mnist", lambda path: calls.append(path) or real(path))
    return lambda: view_generate.training_images(tmp_path / "mnist.npz")


def _charts(tmp_path, monkeypatch, calls):
    from aigc.app.pages import train as view_train
    from aigc.serve.hosting import Policy
    from helpers import write_fake_run

    run = write_fake_run(tmp_path / "runs", state="finished")
    real = view_train.run_figures
    monkeypatch.setattr(view_train, "run_figures", lambda records: calls.append(records) or real(records))
    return lambda: view_train._live_body(run_dir=str(run.root), was_active=False, can_control=False, policy=Policy())


def _sample_grids(tmp_path, monkeypatch, calls):
    from aigc.app.pages import train as view_train
    from helpers import write_fake_run

    run = write_fake_run(tmp_path / "runs", state="finished")
    real = view_train.png_bytes
    monkeypatch.setattr(view_train, "png_bytes", lambda picture: calls.append(picture.size) or real(picture))
    return lambda: view_train._grid_png(run.sample_path(2))


def _inside(tmp_path, monkeypatch, calls):
    from aigc.app import inside as view_inside
    from helpers import write_fake_inside, write_fake_run

    run = write_fake_run(tmp_path / "runs", state="finished")
    write_fake_inside(run, 1)
    real = view_inside._make_view
    monkeypatch.setattr(view_inside, "_make_view", lambda *args: calls.append(args[1]) or real(*args))
    return lambda: view_inside.epoch_view(run, 1)


def _evaluations(tmp_path, monkeypatch, calls):
    from aigc.quality import metrics
    from aigc.serve import compare

    monkeypatch.setattr(generators, "load_generator", lambda path: ("model", SimpleNamespace(), {}))
    monkeypatch.setattr(metrics, "evaluate_generator", spy(calls, {"fdd": 3.0, "digit_score": 9.0, "class_accuracy": 0.9,
                                                                   "collapsed_digits": [], "collapse": False}))
    entry = compare.Entry("run", tmp_path / "metrics.jsonl", (), {}, {}, generator=fake_served(tmp_path).path)
    return lambda: compare.reevaluate(entry, 2000)


EXERCISES = {"generators": _generators, "directions": _directions, "discriminators": _discriminators,
             "grids": _grids, "previews": _previews, "interpolations": _interpolations, "written": _written,
             "inversions": _inversions, "training_sets": _training_sets, "charts": _charts, "sample_grids": _sample_grids,
             "inside": _inside, "evaluations": _evaluations}


def test_every_server_cache_is_listed_and_exercised():
    """caches.ALL is the one list: no ProcessCache elsewhere, none of caches.py left out, each one tested below."""
    module_level = [value for value in vars(caches).values() if isinstance(value, (ProcessCache, caches.Throttled))]
    assert sorted(map(id, module_level)) == sorted(map(id, caches.ALL.values()))
    root = Path(caches.__file__).resolve().parents[1]
    elsewhere = [str(path.relative_to(root)) for path in root.rglob("*.py")
                 if path.name != "caches.py" and "ProcessCache(" in path.read_text()]
    assert not elsewhere, elsewhere
    assert set(EXERCISES) == set(caches.ALL)


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_a_clear_cache_message_empties_no_server_cache(name, tmp_path, monkeypatch):
    """Issue 11: any visitor's clear-cache message emptied st.cache_*: generators, grids, ... recomputed for all.

    Each page function keeps its result in its caches.ALL entry, which Streamlit's clear-cache leaves alone.
    """
    cache, calls = caches.ALL[name], []
    compute = EXERCISES[name](tmp_path, monkeypatch, calls)
    first = compute()
    assert len(calls) == 1 and len(cache) == 1, f"the result is not kept in the server's {name} cache"
    clear_cache_message()
    again = compute()
    assert len(calls) == 1, f"recomputed after a clear-cache message: {len(calls)} calls"
    assert len(cache) == 1
    assert all(a is b for a, b in zip(first, again)) if isinstance(first, tuple) else again is first


def test_a_retrained_generator_file_is_a_new_key(tmp_path, monkeypatch):
    calls = []
    compute = _generators(tmp_path, monkeypatch, calls)
    compute()
    path = tmp_path / "generator.keras"
    path.write_bytes(b"retrained weights")  # a new mtime is a new key: a retrained file is picked up
    stamp = time.time() + 5
    os.utime(path, (stamp, stamp))
    compute()
    assert len(calls) == 2 and len(caches.GENERATORS) == 2


def test_the_evaluator_survives_a_clear_cache_message():
    """The evaluator is cached per (path, mtime) by the quality module itself (process-level, not st.cache)."""
    from aigc.quality import metrics

    if not metrics.evaluator_available():
        pytest.skip("no shipped evaluator")
    first = metrics.load_evaluator()
    clear_cache_message()
    assert metrics.load_evaluator() is first


def test_grids_are_shared_read_only_pictures_one_per_setting(tmp_path, monkeypatch):
    """Issue 11: a shared link made every visitor run the generator for the same grid."""
    calls = []
    compute = _grids(tmp_path, monkeypatch, calls)
    images, picture, columns, _reading = compute()
    assert picture.startswith(b"\x89PNG") and columns == 4 and compute()[1] is picture
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1.0  # the shared images are read-only
    view_generate.rendered_grid(fake_served(tmp_path), {"digit": 7, "n": 16, "seed": 4, "truncation": 1.0})
    assert len(calls) == 2 and len(caches.GRIDS) == 2


def test_other_settings_are_other_entries(tmp_path, monkeypatch):
    calls, inversions = [], []
    served = fake_served(tmp_path)
    _interpolations(tmp_path, monkeypatch, calls)()
    view_generate.interpolation_media(served, seed_a=1, seed_b=3, steps=4)
    assert len(calls) == 2 and len(caches.INTERPOLATIONS) == 2
    _inversions(tmp_path, monkeypatch, inversions)()
    view_draw.inverted(served, np.zeros((28, 28), np.float32), 4)  # another label, another search
    assert len(inversions) == 2 and len(caches.INVERSIONS) == 2


@pytest.mark.slow
def test_grid_cache_stays_within_its_budget(tmp_path, monkeypatch):
    budget = 2 * 2**20
    monkeypatch.setattr(caches.GRIDS, "max_bytes", budget)  # the real cache and its size_of, a smaller budget
    monkeypatch.setattr(view_generate, "generate", lambda model, n, digit, *, seed, truncation, config: (
        np.full((n, 28, 28), seed % 7 / 7, np.float32), np.zeros(n, np.int32)))
    served = fake_served(tmp_path)
    for seed in range(60):  # 60 x 100 images x 3 KB = 19 MB unbounded
        view_generate.rendered_grid(served, {"digit": None, "n": 100, "seed": seed, "truncation": 1.0})
    assert 0 < caches.GRIDS.bytes <= budget and 0 < len(caches.GRIDS) < 60


def test_the_app_keeps_nothing_in_streamlit_caches():
    """Every cache of the app is process-level: no st.cache_data / st.cache_resource a visitor could empty."""
    root = Path(__file__).resolve().parent.parent
    use = re.compile(r"st\.cache_(data|resource)\s*[(.]|@st\.cache")  # a decorator, a call or .clear(): not prose
    offenders = [f"{path.relative_to(root)}:{number}" for path in [root / "app.py", *(root / "aigc").rglob("*.py")]
                 for number, line in enumerate(path.read_text().splitlines(), 1) if use.search(line.split("#")[0])]
    assert not offenders, offenders


def test_the_heap_is_frozen_when_due_without_walking_it_on_every_run(monkeypatch):
    """gc.get_freeze_count() walks every frozen object with the GIL held: it cost ~40 ms a click under a crowd.

    Issue 21: a big run's records, kept after the first freeze, cost each live poll ~12 ms of Keras's gc.collect();
    they are frozen once the watchers kept REFREEZE_RECORDS more, and everything at most every REFREEZE_S.
    """
    from aigc.serve import watcher

    calls, now = [], [100.0]
    fake_gc = SimpleNamespace(collect=lambda: calls.append("collect"), freeze=lambda: calls.append("freeze"),
                              unfreeze=lambda: calls.append("unfreeze"),
                              get_freeze_count=lambda: pytest.fail("walks the whole frozen heap on every run"))
    monkeypatch.setattr(frame, "gc", fake_gc)
    monkeypatch.setattr(frame, "time", SimpleNamespace(monotonic=lambda: now[0]))
    monkeypatch.setattr(frame, "_FROZEN", {"at": None, "kept": 0})
    monkeypatch.setattr(watcher, "records_kept", 0)
    once = ["unfreeze", "collect", "freeze"]
    for _ in range(3):
        frame.freeze_heap()
    assert calls == once
    now[0] += frame.REFREEZE_S / 2
    watcher.records_kept = frame.REFREEZE_RECORDS - 1
    frame.freeze_heap()
    assert calls == once  # neither due
    watcher.records_kept = frame.REFREEZE_RECORDS
    frame.freeze_heap()
    assert calls == once * 2  # a run's records were kept: frozen again, after a collection of what died
    now[0] += frame.REFREEZE_S
    frame.freeze_heap()
    frame.freeze_heap()
    assert calls == once * 3


def test_throttled_figures_follow_changes_within_a_cpu_share():
    """Issue 21: a 10,000-epoch run's figures took ~90 ms to remake on every new record (every ~3 s), per poll."""
    now = [0.0]
    throttled = caches.Throttled(share=0.01, max_entries=2, clock=lambda: now[0])
    made = []

    def make(value):
        return lambda: made.append(value) or value

    assert throttled.get("run", 1, make("v1")) == "v1"
    assert throttled.get("run", 1, make("again")) == "v1" and made == ["v1"]  # same version: kept
    throttled._entries["run"][3] = 0.09  # pretend the last remake took 90 ms: its figures are held for 9 s
    now[0] = 5.0
    assert throttled.get("run", 2, make("v2")) == "v1"  # changed, but within its budget: the previous figures
    now[0] = 9.5
    assert throttled.get("run", 2, make("v2")) == "v2" and made == ["v1", "v2"]
    throttled.get("a", 1, make("a"))
    throttled.get("b", 1, make("b"))
    assert len(throttled) == 2  # bounded: the least recently used run is dropped
    throttled.clear()
    assert len(throttled) == 0
