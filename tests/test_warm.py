"""The warm store (serve/warm.py): a cold server's first page without loading the generator, and only for the exact
weights the store was made from."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from aigc import settings
from aigc.explore.directions import Directions
from aigc.explore.reading import Reading
from aigc.serve import caches, generators, warm
from helpers import assert_clean, grid_url, run_app, save_untrained_generator


@pytest.fixture
def own_checkpoints(app_env, tiny_checkpoints, tmp_path, monkeypatch):
    """A writable copy of the tiny checkpoints as the app's checkpoint folder; caches and primes start empty."""
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, folder)
    monkeypatch.setenv(settings.CHECKPOINTS_ENV, str(folder))
    caches.clear_all()
    monkeypatch.setattr(warm, "_PRIMED", {})
    yield folder / "generator.keras"
    caches.clear_all()


def cold_server(monkeypatch) -> None:
    """What a restart leaves: no caches, nothing primed."""
    caches.clear_all()
    monkeypatch.setattr(warm, "_PRIMED", {})


def test_values_round_trip_without_pickle():
    reading = Reading(np.arange(3), np.linspace(0, 1, 3), np.zeros(3, bool), np.ones(3, bool), np.full(3, 0.5), False)
    value = (np.ones((2, 28, 28), np.float32), b"\x89PNG...", reading, 12.5, None, "2026", [b"a", b"b"],
             Directions(np.eye(3, 4, dtype=np.float32), np.ones(3)), (1, (2.5, None), True))
    members = {}
    back = warm.decode(warm.encode(value, members), members)
    assert all(array.dtype != object for array in members.values())
    assert isinstance(back, tuple) and isinstance(back[6], list) and back[8] == (1, (2.5, None), True)
    np.testing.assert_array_equal(back[0], value[0])
    assert not back[0].flags.writeable  # shared by every session, like the pages' own results
    assert back[1:2] == value[1:2] and back[3:7] == value[3:7]
    for name in ("labels", "confidence", "ood", "doubt", "score"):
        np.testing.assert_array_equal(getattr(back[2], name), getattr(reading, name))
    assert back[2].calibrated is False
    np.testing.assert_array_equal(back[7].vectors, value[7].vectors)
    with pytest.raises(TypeError):
        warm.encode(object(), {})
    with pytest.raises(TypeError):
        warm.encode(np.array([object()]), {})
    with pytest.raises((ValueError, KeyError)):
        warm.decode({"d": "Popen", "f": {}}, {})
    with pytest.raises(ValueError):
        warm.decode({"x": 1}, {})


def test_a_cold_server_shows_the_first_grid_from_the_store_without_the_model(own_checkpoints, monkeypatch):
    """Before: the sidebar loaded the generator (and TensorFlow, ~10 s on 2 cores) before any page showed."""
    first = run_app()
    assert_clean(first)
    assert warm.entries_of(own_checkpoints), "the default page computed nothing to keep"
    warm.write(own_checkpoints)
    cold_server(monkeypatch)

    app = run_app()
    assert_clean(app)
    assert not generators.is_loaded(own_checkpoints), "the first page loaded the generator"
    assert grid_url(app) == grid_url(first)  # the same picture (its media id is a hash of the bytes)
    assert "cached" in app.image[0].captions[0]
    app.button[1].click().run()  # New seed: now the generator is needed, and loads
    assert_clean(app)
    assert generators.is_loaded(own_checkpoints) and grid_url(app) != grid_url(first)


def test_a_store_of_other_weights_or_a_damaged_one_is_ignored(own_checkpoints, monkeypatch):
    run_app()
    warm.write(own_checkpoints)
    save_untrained_generator(own_checkpoints, seed=1, card={"preset": "dcgan", "epochs": 0})  # retrained, store not
    cold_server(monkeypatch)
    assert not warm.prime(own_checkpoints)
    app = run_app()
    assert_clean(app)
    assert generators.is_loaded(own_checkpoints) and "cached" not in app.image[0].captions[0]

    warm.store_path(own_checkpoints).write_bytes(b"PK\x03\x04 not a store")
    cold_server(monkeypatch)
    assert not warm.prime(own_checkpoints)
    assert_clean(run_app())


def test_the_shipped_store_is_of_the_shipped_generator_and_draws_what_it_draws(monkeypatch):
    """Retraining checkpoints/generator.keras without `python -m aigc.app.warm_store --write` fails here."""
    monkeypatch.delenv(settings.CHECKPOINTS_ENV, raising=False)
    monkeypatch.setattr(warm, "_PRIMED", {})
    path = settings.shipped_generator("dcgan")
    caches.clear_all()
    try:
        assert warm.prime(path), "checkpoints/generator_warm.npz is stale: python -m aigc.app.warm_store --write"
        from aigc.engine.sampling import generate
        from aigc.explore.reading import read_images

        model, config, _card = generators.load_served(path)
        grids = [(suffix, value) for name, suffix, value in warm.entries_of(path) if name == "grids"]
        assert grids
        for (digit, n, seed, truncation, _scale, shift), (images, _png, reading, _ms) in grids:
            assert shift is None
            live, _labels = generate(model, n, digit, seed=seed, truncation=truncation, config=config)
            # Another CPU kind rounds differently: at most a grey level or two on a pixel, never another digit.
            assert np.abs(np.asarray(live) - images).max() <= 2 / 255
            np.testing.assert_array_equal(read_images(np.asarray(live), requested=digit).labels, reading.labels)
    finally:
        caches.clear_all()
