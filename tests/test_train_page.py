"""The Train page says what is true (issue 22 items 2, 3, 6, 8): a second tab keeps up, quality series carry their
sample counts, the data given is seen, a locked visitor is told the truth, deletes ask, counts agree with nouns."""
from __future__ import annotations

import json

import pytest

from helpers import assert_clean, run_app, texts, write_fake_run

from aigc.runs.files import atomic_write_json


def test_a_shown_run_keeps_polling_when_no_job_runs(app_env, monkeypatch):
    """Tab B shows a stopped run: it must keep polling (slowly) to notice a Resume clicked in tab A."""
    import streamlit

    from aigc.app.pages import train

    cadences = []
    real = streamlit.fragment

    def recording(*args, **kwargs):
        cadences.append(kwargs.get("run_every"))
        return real(*args, **kwargs)

    monkeypatch.setattr(streamlit, "fragment", recording)
    write_fake_run(app_env, state="stopped")
    app = run_app(view="train")
    assert_clean(app)
    assert cadences and cadences[-1] == train.IDLE_POLL_S and train.IDLE_POLL_S > train.POLL_S


def _quality_records(*, epoch_n: int | None = 2000, probe_n: int | None = 500, extra: dict | None = None) -> list:
    records = [{"kind": "probe", "step": s, "epoch": s / 100, "fdd": 9.0 - s / 100, "digit_score": 8.0,
                "class_accuracy": 0.9, **({"eval_n": probe_n} if probe_n else {})} for s in (30, 60)]
    records += [{"kind": "epoch", "step": 100 * e, "epoch": e, "fdd": 3.0 / e, "digit_score": 9.0,
                 "class_accuracy": 0.95, **({"eval_n": epoch_n} if epoch_n else {}), **(extra or {})}
                for e in (1, 2)]
    return records


def _legend(figure) -> dict[str, list]:
    """{trace name: [showlegend of each trace of that name]}."""
    names: dict[str, list] = {}
    for trace in figure.to_dict()["data"]:
        names.setdefault(trace["name"], []).append(trace.get("showlegend", True))
    return names


def test_quick_checks_and_epoch_evaluations_are_separate_series_with_their_counts():
    from aigc.serve.charts import quality_figure

    legend = _legend(quality_figure(_quality_records()))
    assert set(legend) == {"quick checks (500 samples)", "end of epoch (2,000 samples)"}
    assert all(shown.count(True) == 1 for shown in legend.values())  # one legend entry each, over three panels


def test_older_records_take_the_run_specs_count_or_say_it_is_unknown():
    from aigc.serve.charts import quality_figure

    legend = _legend(quality_figure(_quality_records(epoch_n=None, probe_n=None), eval_n=5000))
    assert set(legend) == {"quick checks (500 samples)", "end of epoch (5,000 samples)"}
    legend = _legend(quality_figure(_quality_records(epoch_n=None)))
    assert "end of epoch (sample count not recorded)" in legend


def test_precision_and_recall_are_bounded_panels_when_recorded():
    from aigc.serve.charts import quality_figure

    layout = quality_figure(_quality_records(extra={"precision": 0.8, "recall": 0.6})).to_dict()["layout"]
    titles = [a["text"] for a in layout["annotations"]]
    assert any(t.startswith("Precision") for t in titles) and any(t.startswith("Recall") for t in titles)
    ranges = [layout[k]["range"] for k in layout if k.startswith("yaxis")]
    assert sum(1 for r in ranges if r[0] == 0 and r[1] <= 1.05) == 3  # class accuracy, precision, recall
    assert len(titles) == 5


def test_the_loss_axis_title_fits_beside_the_plot():
    """The y title was 47 characters on a ~230 px tall plot and ran up into the subtitle; the left margin was 10 px."""
    from aigc.serve.charts import CHART_HEIGHT, loss_figure

    records = [{"kind": "step", "step": s, "g_loss": 1.0, "d_loss": 1.0} for s in (1, 2)]
    layout = loss_figure(records).to_dict()["layout"]
    title = layout["yaxis"]["title"]["text"]
    plot_height = CHART_HEIGHT - layout["margin"]["t"] - layout["margin"]["b"]
    assert len(title) * 7 < plot_height * 0.8, title  # ~7 px a character at plotly's 14 px axis font
    assert layout["yaxis"].get("automargin") and layout["margin"]["l"] >= 40


def test_the_page_uses_the_run_specs_count_for_older_records(app_env):
    run = write_fake_run(app_env, state="finished")  # its epoch records carry no eval_n; its spec says 2,000
    from aigc.app.pages.train import counted_records, run_figures
    from aigc.runs.files import read_metrics

    figures = run_figures(counted_records(read_metrics(run.metrics), run))
    assert "end of epoch (2,000 samples)" in _legend(figures["quality"])
    app = run_app(view="train")
    assert_clean(app)


def test_the_data_file_a_run_trains_on_is_not_called_missing(app_env, tmp_path, synthetic_npz):
    """$AIGC_MNIST points nowhere, but the newest run trains on a file given in the path field."""
    from aigc.engine.spec import RunSpec

    run = write_fake_run(app_env, state="stopped")
    atomic_write_json(run.config, {"spec": RunSpec.resolve(epochs=4, data=str(synthetic_npz)).to_dict()})
    app = run_app(view="train")
    assert_clean(app)
    page = " ".join(texts(app, "warning") + texts(app, "caption"))
    assert "not found" not in page and "not available" not in page, page
    assert "mnist.npz" in page and str(synthetic_npz.parent) not in page
    assert app.text_input(key="job_data").value == str(synthetic_npz)  # the owner's next job uses it too


def test_missing_data_says_what_to_do_here_without_a_cut_path(app_env):
    app = run_app(view="train")
    warning = " ".join(texts(app, "warning"))
    assert "AIGC_MNIST" in warning and "field below" in warning
    assert "datasets." not in warning and "--data" not in warning, warning  # not the CLI's advice, not a cut path


def test_a_locked_visitor_is_not_told_to_start_one_below(app_env, monkeypatch):
    monkeypatch.setenv("AIGC_TRAINING", "password")
    monkeypatch.setenv("AIGC_TRAINING_PASSWORD", "open sesame")
    app = run_app(view="train")
    assert_clean(app)
    info = " ".join(texts(app, "info"))
    assert "below" not in info and "password" in info, info


def test_the_runs_table_shows_a_dash_where_nothing_was_measured(app_env):
    run = write_fake_run(app_env, state="stopped")
    status = json.loads(run.status.read_text())
    atomic_write_json(run.status, dict(status, last_epoch={"epoch": 2, "fdd": 3.0678, "eval_n": 2000}))
    app = run_app(view="train")
    table = app.dataframe[0].value
    assert list(table["class accuracy"]) == ["-"]
    assert list(table["FDD"]) == ["3.068 (2,000 samples)"]


def test_deleting_a_run_asks_first(app_env):
    write_fake_run(app_env, state="stopped")
    app = run_app(view="train")
    app.selectbox(key="delete_choice").set_value("run-fake")
    app.button(key="delete_button").click().run()
    assert (app_env / "run-fake").exists()  # nothing deleted on the first click
    assert "Delete run-fake" in " ".join(texts(app, "warning"))
    app.button(key="delete_cancel").click().run()
    assert (app_env / "run-fake").exists()
    app.button(key="delete_button").click().run()
    app.button(key="delete_confirm").click().run()
    assert not (app_env / "run-fake").exists()
    assert "Deleted run-fake." in texts(app, "success")


def test_a_forged_confirmation_deletes_nothing(app_env):
    write_fake_run(app_env, state="stopped")
    app = run_app(view="train")
    app.session_state["_delete_pending"] = "../../etc"
    app.run()
    assert not [b for b in app.button if b.key == "delete_confirm"]


def test_the_finished_note_points_at_the_sidebar_button(app_env):
    write_fake_run(app_env, state="finished")
    app = run_app(view="train")
    note = " ".join(texts(app, "success"))
    assert "Use Run run-fake" in note and "Newest trained run" not in note


def test_resuming_a_one_epoch_finished_run_says_epoch(app_env):
    from aigc.runs.layout import RunPaths
    from aigc.serve import hosting, jobs

    run = write_fake_run(app_env, state="finished")
    atomic_write_json(run.status, dict(json.loads(run.status.read_text()), epoch=1, total_epochs=1))
    result = jobs.resume_job(RunPaths(run.root), policy=hosting.load_policy(secrets={}, address="127.0.0.1"))
    assert "already finished all 1 epoch;" in result.message and "1 epochs" not in result.message, result.message


@pytest.mark.parametrize("name", ["run-fake", "nonsense"])
def test_a_forged_delete_choice_deletes_nothing_without_confirmation(app_env, name):
    write_fake_run(app_env, state="stopped")
    app = run_app(view="train")
    app.session_state["_delete_pending"] = name
    app.run()
    assert (app_env / "run-fake").exists()
