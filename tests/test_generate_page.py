"""The Generate page and the generator chooser through AppTest: what issue 22 found a new user stumbling on."""
from __future__ import annotations

import pytest

from helpers import assert_clean, run_app, texts


def _captions(app) -> list[str]:
    return [caption for image in app.image for caption in image.captions]


def test_link_numbers_are_ascii_digits_only():
    from aigc.app.routes import ascii_values

    values, notices = ascii_values({"digit": "٧", "n": "７", "seed": "²", "scale": "0.5", "x": "٣"}, ("digit", "n", "seed", "scale"))
    assert values == {"scale": "0.5"}
    assert [notice.split("=")[0] for notice in notices] == ["digit", "n", "seed"]
    assert all("0-9" in notice for notice in notices)
    _values, (forged,) = ascii_values({"digit": "[٧](evil.example)"}, ("digit",))
    assert "[" not in forged and "(" not in forged.split(" is ")[0]  # a forged value cannot become a link


def test_a_link_with_unicode_digits_keeps_the_form_and_a_grid(app_env):
    app = run_app(digit="٧", n="７", seed="²", scale="١")  # Arabic-Indic, full-width, superscript: none is a digit here
    assert_clean(app)
    warnings = texts(app, "warning")
    assert len(warnings) == 1 and all(f"{key}=" in warnings[0] for key in ("digit", "n", "seed", "scale"))
    assert "16 x any digit - seed 0 - scale 1.00" in _captions(app)[0]
    assert app.number_input(key="gen_n").value == 16
    assert {key: app.query_params[key] for key in ("digit", "n", "seed")} in (
        {"digit": "any", "n": "16", "seed": "0"}, {"digit": ["any"], "n": ["16"], "seed": ["0"]})
    app.button[0].click().run()  # Generate: the bad link is not kept
    assert_clean(app)
    assert all(str(app.query_params[key]).isascii() for key in ("digit", "n", "seed", "scale"))


def test_style_previews_with_any_digit_show_the_first_tiles_digit(app_env, monkeypatch):
    from aigc.app.pages import generate
    from aigc.engine.sampling import digit_labels

    asked, original = [], generate.preview_pngs
    monkeypatch.setattr(generate, "preview_pngs", lambda served, z, digit: asked.append(digit) or original(served, z, digit))
    for seed in (1, 4):  # first tiles: a 3, a 9 (never the 8 every strip used to show)
        app = run_app(seed=seed)
        assert_clean(app)
        first = int(digit_labels(16, None, seed=seed)[0])
        assert asked[-1] == first
        assert any(f"first tile's hand ({'an' if first == 8 else 'a'} {first})" in text for text in texts(app, "caption"))


def test_a_pinned_tile_disables_seed_a_and_digit_a(app_env):
    from aigc.app.widgets import pin
    from aigc.engine.sampling import latents

    app = run_app(digit=3, n=4)
    assert not app.number_input(key="interp_a").disabled and not app.selectbox(key="interp_da").disabled
    pin(latents(1, 100, seed=9)[0], 3, source=("test", 0), state=app.session_state)
    app.run()
    assert_clean(app)
    for widget in (app.number_input(key="interp_a"), app.selectbox(key="interp_da")):
        assert widget.disabled and "pinned tile" in widget.help
    app.checkbox(key="interp_from_pin").uncheck().run()  # back to the seeds: editable again
    assert not app.number_input(key="interp_a").disabled and not app.selectbox(key="interp_da").disabled


SEED_RANGE = "Seed must be a whole number from 0 to 2147483647"


@pytest.mark.parametrize("key, typed, shown, note, caption", [
    ("gen_seed", 3_000_000_000, 2147483647, f"{SEED_RANGE} (got 3000000000): showing seed 2147483647.",
     "seed 2147483647 "),
    ("gen_seed", -1, 0, f"{SEED_RANGE} (got -1): showing seed 0.", "seed 0 "),
    ("gen_n", 2.5, 2, "How many must be a whole number from 1 to 100 (got 2.5): showing 2.", "2 x any digit")])
def test_a_number_the_grid_cannot_show_says_what_it_shows(app_env, key, typed, shown, note, caption):
    app = run_app(seed=5)
    app.number_input(key=key).set_value(typed)
    app.button[0].click().run()
    assert_clean(app)
    assert note in texts(app, "warning")
    assert caption in _captions(app)[0]
    assert app.number_input(key=key).value == shown  # the field agrees with the grid (the browser showed 3 for 2.5)


def test_an_out_of_range_interpolation_seed_says_what_it_shows(app_env):
    app = run_app()
    app.number_input(key="interp_b").set_value(-5)
    app.button(key="FormSubmitter:interp_form-Interpolate").click().run()
    assert_clean(app)
    assert "Seed B must be a whole number from 0 to 2147483647 (got -5): showing seed 0." in texts(app, "warning")
    assert app.number_input(key="interp_b").value == 0
    assert any(caption.endswith("to 0") for caption in _captions(app))


def test_a_cached_grid_says_cached_not_0_ms(app_env):
    from aigc.serve.caches import GRIDS

    GRIDS.clear()
    app = run_app(seed=11, n=4)
    assert "made in" in _captions(app)[0] and "cached" not in _captions(app)[0]
    made = _captions(app)[0].split("made in ")[1]
    app.run()
    assert_clean(app)
    assert _captions(app)[0].endswith(f"cached (made in {made})") and " 0 ms" not in _captions(app)[0]


def test_every_image_on_generate_has_alt_text(app_env):
    app = run_app(digit=3, n=4, seed=2)
    assert_clean(app)
    alts = [picture.alt for image in app.image for picture in image.proto.imgs]
    assert len(alts) == 6 and all(alt.strip() for alt in alts), alts  # grid, 3 style strips, strip, GIF
    assert "4 generated handwritten digits" in alts[0] and "3" in alts[0]


def test_readings_leave_the_digits_of_a_100_tile_grid_uncovered():
    import io

    import numpy as np
    from PIL import Image

    from aigc.app.pages.generate import LABELED_TILES_MAX, labeled_grid_png, reading_note
    from aigc.engine.sampling import grid

    images = np.random.default_rng(0).random((100, 28, 28), dtype=np.float32)
    picture, reading = labeled_grid_png(images, None, columns=10, scale=1)  # the shipped evaluator reads them
    assert reading is not None
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(picture)).convert("L")), np.asarray(grid(images, 10, scale=3)))
    small, _reading = labeled_grid_png(images[:LABELED_TILES_MAX], None, columns=6, scale=3)
    assert not np.array_equal(np.asarray(Image.open(io.BytesIO(small)).convert("L")),
                              np.asarray(grid(images[:LABELED_TILES_MAX], 6, scale=3)))  # small grids keep their labels
    note = reading_note(reading)
    assert f"over {LABELED_TILES_MAX} tiles" in note
    flagged = [str(i + 1) for i in np.flatnonzero(reading.doubt)]
    assert all(number in note for number in flagged[:5])


def _finished_run(root, name: str):
    """A finished run folder with a loadable (untrained) generator."""
    from aigc.runs.files import atomic_write_json
    from aigc.runs.layout import RunPaths
    from helpers import save_untrained_generator

    run = RunPaths(root / name)
    save_untrained_generator(run.generator)
    atomic_write_json(run.status, {"state": "finished", "epoch": 1, "total_epochs": 1})
    return run


def _query(app, key: str) -> str:
    value = app.query_params[key]
    return value[-1] if isinstance(value, list) else value


def test_a_link_names_the_concrete_run_and_keeps_it_when_a_run_is_added(app_env):
    import os
    import time

    first = _finished_run(app_env, "run-first")
    app = run_app(generator="Newest trained run")  # an old link: resolved once, to the run that is newest now
    assert_clean(app)
    assert _query(app, "generator") == "Run run-first"
    later = _finished_run(app_env, "run-later")
    os.utime(later.status, (time.time() + 5, time.time() + 5))  # certainly the newest
    app.run()
    assert_clean(app)
    assert _query(app, "generator") == "Run run-first" and "run-first" in _captions(app)[0]
    again = run_app(generator="Run run-first")  # the shared link still means run-first
    assert_clean(again)
    assert "run-first" in _captions(again)[0] and first.generator.is_file()


def test_a_deleted_run_says_so_and_falls_back_to_the_shipped_generator(app_env):
    import shutil

    run = _finished_run(app_env, "run-gone")
    app = run_app(generator="Run run-gone")
    assert "run-gone" in _captions(app)[0]
    shutil.rmtree(run.root)
    app.run()
    assert_clean(app)
    assert any("Run run-gone is no longer on this server" in text and "Shipped" in text for text in texts(app, "warning"))
    assert "Shipped" in _captions(app)[0] and _query(app, "generator") == "Shipped"
    linked = run_app(generator="Run run-gone")  # a link to a deleted run says so too
    assert any("Run run-gone is no longer on this server" in text for text in texts(linked, "warning"))
    assert "Shipped" in _captions(linked)[0]


def test_a_run_that_finished_since_the_session_chose_is_offered(app_env):
    app = run_app()
    assert not app.sidebar.button
    _finished_run(app_env, "run-new")
    app.run()
    assert_clean(app)
    offer = app.sidebar.button(key="use_finished_run")
    assert "run-new" in offer.label
    offer.click().run()
    assert_clean(app)
    assert "run-new" in _captions(app)[0] and not app.sidebar.button
