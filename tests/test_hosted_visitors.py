"""What a hosted visitor sees when things go wrong: forged numbers, unloadable files, pids (issue 21's smaller items)."""
from __future__ import annotations

import json
import zipfile

import pytest
from helpers import run_app, save_untrained_generator, texts, visit, write_fake_run

from aigc.serve.hosting import Policy, visitor_message

HOSTED = Policy(training="off", loopback=False)


@pytest.mark.parametrize("message", ["Started run-1 (pid 777)", "held by pid=777, since noon", "trainer pid: 777 died",
                                     "a job (PID #777) runs"])
def test_no_spelling_of_a_pid_survives_the_hosted_filter(message):
    shown = visitor_message(message, HOSTED)
    assert "777" not in shown, shown


@pytest.mark.parametrize("key,value", [("gen_n", float("nan")), ("gen_n", float("inf")), ("gen_seed", float("nan")),
                                       ("gen_seed", float("-inf"))])
def test_a_forged_non_finite_number_falls_back_instead_of_crashing_streamlit(app_env, key, value):
    """Before: Streamlit's own int() of the widget's value raised, and the page showed its generic error."""
    app = run_app()
    app.number_input(key=key).set_value(value)
    app = app.button[0].click().run()
    assert not app.exception, app.exception
    assert app.image, "the grid is still there"


def test_a_fractional_how_many_says_what_is_shown(app_env):
    app = run_app()
    app.number_input(key="gen_n").set_value(2.5)
    app = app.button[0].click().run()
    assert any("whole number" in text and "showing 2" in text for text in texts(app, "warning")), texts(app, "warning")


def _broken_keras(path, tmp_path):
    """A real aigc .keras archive whose Keras config names a layer that does not exist: Keras's message quotes it."""
    good = tmp_path / "good.keras"
    save_untrained_generator(good)
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                config["config"]["layers"][1]["class_name"] = "NoSuchLayer"
                config["config"]["layers"][1]["config"]["secret_setting"] = "x" * 400
                data = json.dumps(config).encode()
            target.writestr(item, data)


def test_an_unloadable_generator_is_one_short_line_for_a_hosted_visitor(app_env, monkeypatch, tmp_path):
    """Before: an 11-line Keras message, with the file's config, in the page."""
    write_fake_run(app_env, state="finished")
    _broken_keras(app_env / "run-fake" / "generator.keras", tmp_path)
    monkeypatch.setenv("AIGC_TRAINING", "off")
    app = run_app(generator="Newest trained run")
    shown = texts(app, "warning") + texts(app, "error")
    problems = [text for text in shown if "could not" in text]
    assert problems, shown
    for text in problems:
        assert "\n" not in text and len(text) < 300 and "secret_setting" not in text and "NoSuchLayer" not in text, text
        assert str(app_env) not in text
    assert app.image or visit(app, "generate").image, "the shipped generator is served instead"


def test_what_a_client_may_send_agrees_with_the_canvas_limit():
    """Before: Streamlit's default 25 MB per message; 12 sessions of forged 23 MB canvases pinned ~870 MB."""
    import base64
    import tomllib

    from aigc.explore.preprocess import MAX_PNG_BYTES
    from aigc.settings import ROOT

    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    limit_bytes = server["maxWidgetStateSize"] * 2**20
    largest_drawing = len(base64.b64encode(b"\0" * MAX_PNG_BYTES)) + 256 * 1024  # PNG as base64 + its strokes' JSON
    assert largest_drawing <= limit_bytes <= 4 * 2**20, (largest_drawing, limit_bytes)


def test_a_folder_with_a_garbage_status_is_not_shown_as_the_current_run(tmp_path):
    """Before: the newest folder with any status.json was the Train page's current run, junk included."""
    import os
    import time

    from aigc.runs.files import atomic_write_json
    from aigc.serve.jobs import current_job

    real = tmp_path / "run-real"
    real.mkdir()
    atomic_write_json(real / "status.json", {"state": "finished", "epoch": 1, "total_epochs": 1})
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "status.json").write_bytes(b"\x00\xffnot json")
    later = time.time() + 10
    os.utime(junk / "status.json", (later, later))  # the newest
    job = current_job(root=tmp_path)
    assert job.paths is not None and job.paths.name == "run-real"


def test_a_train_link_on_a_server_without_training_gets_a_sentence():
    """Before: Streamlit's generic 'Page not found' for /train when training is off."""
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from aigc.app import frame
        from aigc.app.routes import Frame
        from aigc.serve.hosting import Policy

        pages = frame.build_pages(Frame(Policy(training="off", loopback=False), None))
        stub = pages[frame.TRAINING_OFF_KEY]
        st.write(f"{'train' in pages}|{stub.url_path}|{stub.title}|{stub.visibility}")

    app = AppTest.from_function(script).run()
    assert not app.exception, app.exception
    assert app.markdown[0].value == "False|train|Train|hidden"  # no Train page, no menu entry; /train is the stub
    from aigc.app.frame import TRAINING_OFF

    assert "turned off" in TRAINING_OFF
