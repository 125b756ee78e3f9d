"""Pages through AppTest: navigation and old links, Compare runs, the small things a user hit (issue 14)."""
from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_clean, registered_paths, run_app, texts, visit, write_fake_run



def test_every_view_is_a_page_with_its_own_url_path(app_env):
    app = run_app()
    assert_clean(app)
    assert {"generate", "write", "draw", "train", "compare", "model"} <= registered_paths(app)
    assert "16 x any digit" in app.image[0].captions[0]  # "/" leads to Generate


@pytest.mark.parametrize("view, marker", [("model", "dcgan_generator"), ("compare", "Runs to compare"),
                                          ("nonsense<script>", "x any digit")])
def test_old_view_links_redirect_and_keep_their_parameters(app_env, view, marker):
    write_fake_run(app_env, state="finished")
    app = run_app(view=view, seed=7)
    assert_clean(app)
    page = " ".join(texts(app, "markdown") + [c for i in app.image for c in i.captions]
                    + [m.label for m in app.multiselect])
    assert marker in page
    assert "view" not in app.query_params and app.query_params["seed"] in ("7", ["7"])


def test_generator_chooser_and_notices_are_shared_across_pages(app_env, monkeypatch):
    monkeypatch.setenv("AIGC_MAX_EPOCHS", "many")  # a bad setting: a hosting notice in the sidebar
    app = run_app()
    app.sidebar.selectbox(key="generator_choice").set_value("Seed preset").run()
    for view in ("model", "compare", "generate"):
        visit(app, view)
        assert app.sidebar.selectbox(key="generator_choice").value == "Seed preset"
        assert app.sidebar.warning, view
    assert "Seed preset" in app.image[0].captions[0]


def test_compare_overlays_runs_and_the_shipped_model(app_env):
    write_fake_run(app_env, state="finished")
    app = run_app(view="compare")
    assert_clean(app)
    assert app.multiselect(key="compare_pick").value == ["run-fake"]  # tiny checkpoints ship no training log
    assert len(app.get("plotly_chart")) == 1
    table = app.dataframe[0].value
    assert list(table["entry"]) == ["run-fake"] and table["fdd"][0] == 15.0 and table["epochs"][0] == 2
    assert "tensorboard --logdir runs" in " ".join(texts(app, "caption"))
    app.radio(key="compare_axis").set_value("time").run()
    app.selectbox(key="compare_metric").set_value("class_accuracy").run()
    assert_clean(app)
    assert app.image and "epoch 2" in app.image[0].captions[0]  # its last grid


def test_compare_without_runs_says_what_to_do(app_env):
    app = run_app(view="compare")
    assert_clean(app)
    assert "Nothing to compare yet" in " ".join(texts(app, "info"))


def test_out_of_range_how_many_says_why(app_env):
    app = run_app()
    app.number_input(key="gen_n").set_value(500)
    app.button[0].click().run()
    assert_clean(app)
    assert "How many must be a whole number from 1 to 100 (got 500): showing 100." in texts(app, "warning")
    assert "100 x any digit" in app.image[0].captions[0]


def test_link_notices_are_one_line(app_env):
    app = run_app(digit=11, n=0, seed="text")
    warnings = texts(app, "warning")
    assert len(warnings) == 1 and warnings[0].startswith("Link parameters ignored: digit=")


def test_reading_says_an_8(app_env):
    from aigc.app.widgets import a_digit

    assert (a_digit(8), a_digit(7), a_digit("8")) == ("an 8", "a 7", "an 8")


def test_interpolation_frames_are_legible():
    from aigc.app.pages.generate import FRAME_SCALE, interpolation_strip

    strip = interpolation_strip(np.zeros((30, 28, 28), np.float32))
    rows = 3  # 30 frames wrap into rows of 10
    assert strip.height >= rows * 28 * FRAME_SCALE and 28 * FRAME_SCALE >= 80


def test_a_clicked_tile_is_read_from_the_selection_event_and_forged_events_pin_nothing():
    from aigc.explore.pin import picked_tile

    assert picked_tile({"selection": {"points": [{"point_index": 2, "x": 1}]}}, 4) == 2
    for forged in (None, {}, {"selection": {"points": []}}, {"selection": {"points": [{"point_index": 4}]}},
                   {"selection": {"points": [{"point_index": -1}]}}, {"selection": {"points": [{"point_index": "x"}]}},
                   {"selection": "points"}):
        assert picked_tile(forged, 4) is None, forged


def test_pinning_stores_the_hand_once_per_click_and_only_fits_its_generator():
    from aigc.app.widgets import pin, pinned_hand

    state = {}
    assert pin(np.arange(3, dtype=np.float32), 7, source=("grid", 0), state=state)
    assert not pin(np.zeros(3), 7, source=("grid", 0), state=state)  # the same selection on a rerun: nothing new
    z, digit = pinned_hand(3, state)
    assert z.tolist() == [0.0, 1.0, 2.0] and digit == 7
    assert pinned_hand(100, state) is None  # another generator's latent size
    state["_pinned_digit"] = "7; drop"  # forged state: the hand stays, the digit is unknown
    assert pinned_hand(3, state)[1] is None


def test_a_pinned_tile_starts_the_interpolation_and_writes_row_one(app_env):
    from aigc.app.widgets import pin
    from aigc.engine.sampling import latents

    app = run_app(digit=3, n=4)
    pin(latents(1, 100, seed=9)[0], 3, source=("test", 0), state=app.session_state)
    app.run()
    assert_clean(app)
    assert app.checkbox(key="interp_from_pin").value
    assert any("my pinned tile (a 3) to seed 2" in c for image in app.image for c in image.captions)
    visit(app, "write")
    assert_clean(app)
    assert app.checkbox(key="write_use_pinned").value


def test_links_point_at_the_page_path():
    from aigc.app.routes import page_link

    assert page_link("http://host:8501/generate?x=1", "write", {"text": "42"}) == "http://host:8501/write?text=42"
    assert page_link("https://h/app/model", "draw", {}) == "https://h/app/draw"
    assert page_link("http://h/", "generate", {"n": "4"}) == "http://h/generate?n=4"
    assert page_link("", "generate", {}) == "/generate"
