"""What the command line prints for people: dates as dates, durations as durations, progress within an epoch,
counts that agree with their nouns, --help with every default and limit, and eval's sample counts."""
from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from aigc.cli import build_parser
from aigc.engine import progress
from aigc.engine.progress import Progress, epoch_line
from helpers import run_cli_here, save_untrained_generator, tiny_run

UNIX_TIME_AS_FLOAT = re.compile(r"\d\.\d+e\+0?9")
ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


# ---- the epoch line ------------------------------------------------------------------------------------------------

def test_the_epoch_line_prints_its_date_as_a_date_and_durations_as_durations():
    record = {"d_loss": 0.69314, "g_loss": 0.7, "kind": "epoch", "epoch": 1, "step": 1875, "time": 1796037995.12,
              "epoch_time_s": 169.4, "img_per_s": 354.2, "fdd": 3.07, "digit_score": 9.9, "class_accuracy": 0.99,
              "collapsed_digits": [], "collapse": False, "eval_time_s": 12.3, "eval_n": 2000, "precision": 0.85,
              "recall": 0.84}
    line = epoch_line(1, 5, record)
    assert not UNIX_TIME_AS_FLOAT.search(line) and ISO_TIME.search(line), line
    assert "2 min 49 s" in line and "354 img/s" in line and "12 s" in line and "d_loss 0.6931" in line, line
    assert "2,000 samples" in line and "fdd 3.07" in line, line
    assert line.split("; quality")[1].count("precision 0.85, recall 0.84") == 1, line  # quality, not a loss
    assert "epoch_time_s" not in line and "eval_time_s" not in line and "169.4" not in line, line


# ---- progress within an epoch --------------------------------------------------------------------------------------

class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_off_a_terminal_is_a_line_every_interval(monkeypatch):
    lines = []
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 3600.0)
    shown = Progress(epoch=1, total_epochs=2, steps_per_epoch=1875, batch_size=32, log=lines.append, stream=io.StringIO())
    shown.update(32, seconds_per_step=0.1, eta_s=360.0)
    assert lines == []  # not due yet: an hour between lines
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)
    shown.update(320, seconds_per_step=0.1, eta_s=360.0)
    assert lines == ["epoch 1/2: step 320/1,875 (17%), 320 img/s, epoch ends in 2 min 36 s, run in 6 min"], lines
    shown.update(352, seconds_per_step=None, eta_s=None)
    assert lines[-1] == "epoch 1/2: step 352/1,875 (19%), measuring speed"


def test_progress_on_a_terminal_is_one_updating_line(monkeypatch):
    monkeypatch.setattr(progress, "TERMINAL_SECONDS", 0.0)
    terminal, lines = Terminal(), []
    shown = Progress(epoch=2, total_epochs=2, steps_per_epoch=8, batch_size=64, log=lines.append, stream=terminal)
    for step in (2, 4, 8):
        shown.update(step, seconds_per_step=0.5, eta_s=2.0)
    shown.close()
    text = terminal.getvalue()
    assert lines == [] and text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert "step 4/8 (50%), 128 img/s, epoch ends in 2 s\033[K" in text and "run in" not in text  # the last epoch
    assert text.endswith("step 8/8 (100%), 128 img/s, saving the epoch\033[K\n"), repr(text)


@pytest.mark.slow
def test_a_training_run_prints_progress_within_the_epoch_and_dates_as_dates(tmp_path, synthetic_npz, monkeypatch):
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # a line after every call of steps
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert tiny_run(tmp_path / "run", synthetic_npz, epochs=1) == "finished"  # 8 steps of 64, 2 per call
    lines = out.getvalue().splitlines()
    ends = [i for i, line in enumerate(lines) if "epoch 1/1 ended" in line]
    steps = [i for i, line in enumerate(lines) if re.search(r"epoch 1/1: step \d/8 \(\d+%\), [\d,]+ img/s", line)]
    assert len(ends) == 1 and len(steps) >= 2 and max(steps) < ends[0], "\n".join(lines)
    assert not UNIX_TIME_AS_FLOAT.search(out.getvalue()) and ISO_TIME.search(lines[ends[0]]), lines[ends[0]]


# ---- counts that agree with their nouns ----------------------------------------------------------------------------

def one_epoch_run(tmp_path, synthetic_npz, state: str):
    """A run planned to 1 epoch whose status says `state` (nothing trained: no TensorFlow)."""
    from aigc.engine.run_plan import Invocation, make_plan, save_plan
    from aigc.runs.files import atomic_write_json

    run_dir = tmp_path / "runs" / "one"
    save_plan(make_plan(Invocation(run_dir, add_epochs=1), {"data": str(synthetic_npz), "batch_size": 64}))
    atomic_write_json(run_dir / "status.json", {"state": state, "epoch": 1, "total_epochs": 1})
    return run_dir


def test_a_finished_one_epoch_run_says_1_epoch(tmp_path, synthetic_npz):
    run_dir = one_epoch_run(tmp_path, synthetic_npz, "finished")
    result = run_cli_here("train", "--run-dir", str(run_dir), "--resume")
    assert result.returncode == 0, result.stderr
    assert "already finished all 1 epoch;" in result.stdout and "1 epochs" not in result.stdout, result.stdout


def test_training_one_more_epoch_says_1_more_epoch(tmp_path, synthetic_npz):
    from aigc.engine.run_plan import Invocation, make_plan

    run_dir = one_epoch_run(tmp_path, synthetic_npz, "finished")
    notes = make_plan(Invocation(run_dir, add_epochs=1), {}).notes
    assert "training 1 more epoch: to epoch 2" in notes, notes
    notes = make_plan(Invocation(run_dir, add_epochs=3), {}).notes
    assert "training 3 more epochs: to epoch 4" in notes, notes


@pytest.mark.parametrize("count, noun, text", [(0, "epoch", "0 epochs"), (1, "epoch", "1 epoch"),
                                               (2, "worker", "2 workers"), (1875, "step", "1,875 steps")])
def test_counted(count, noun, text):
    from aigc.text import counted

    assert counted(count, noun) == text


# ---- --help --------------------------------------------------------------------------------------------------------

def train_parser(command: str = "train"):
    return build_parser()._subparsers._group_actions[0].choices[command]


@pytest.mark.parametrize("command", ["train", "generate", "eval"])
def test_every_flag_that_takes_a_value_says_its_default(command):
    for action in train_parser(command)._actions:
        if action.option_strings and action.nargs is None:  # flags taking a value
            assert "[default: " in (action.help or ""), f"{command} {action.option_strings[0]}: {action.help}"


def test_train_help_shows_every_default_and_limits():
    from aigc.engine.spec import SETTINGS

    help_text = " ".join(train_parser().format_help().split())  # argparse wraps lines: compare words
    for setting in SETTINGS.values():
        if setting.name != "epochs":
            expected = f"[default: {setting.default_text()}; {setting.allowed()}]"
            assert " ".join(expected.split()) in help_text, setting.name
    for flag, limits in (("--epochs", (1, 10_000)), ("--max-steps", (1, 10**9)), ("--threads", (0, 1024)),
                         ("--nice", (0, 19)), ("--task-index", (0, 10_000)), ("--collective-timeout", (0, 86_400))):
        action = next(a for a in train_parser()._actions if flag in a.option_strings)
        assert "at least {} and at most {}]".format(*limits) in action.help, f"{flag}: {action.help}"


# ---- eval: every figure with its sample count ----------------------------------------------------------------------

LADDER = {"floor": 0.7043, "noise_0.1": 50.8371, "shift_1px": 6.7229, "blur_0.7": 45.4456}


def a_result(n: int, ladder_n: int | None = 10_000) -> dict:
    return {"checkpoint": "checkpoints/generator.keras", "preset": "dcgan", "conditional": True, "n": n, "seed": 0,
            "fdd": 3.94, "ladder": LADDER, "ladder_n": ladder_n, "fdd_floor": 0.7043, "digit_score": 9.9,
            "class_accuracy": 0.998, "per_class_accuracy": [0.998] * 10, "class_histogram": [n // 10] * 10,
            "collapse_warning": None}


def test_eval_says_when_the_ladder_was_computed_on_another_sample_count():
    from aigc.cli.eval import format_report

    text = format_report(a_result(1000))
    fdd_line = next(line for line in text.splitlines() if line.startswith("FDD"))
    assert "1,000 samples" in fdd_line and "between" not in fdd_line, text  # no place on a ladder of other counts
    assert "10,000 samples" in text and "not comparable" in text and "--n 10000" in text, text
    for label in ("digit score", "class accuracy"):
        assert "1,000 samples" in next(line for line in text.splitlines() if line.startswith(label)), text


def test_eval_on_the_ladders_sample_count_places_the_fdd_on_it():
    from aigc.cli.eval import format_report

    text = format_report(a_result(10_000))
    fdd_line = next(line for line in text.splitlines() if line.startswith("FDD"))
    assert "10,000 samples" in fdd_line and "between floor and shift 1px" in fdd_line, text
    assert "not comparable" not in text


def test_eval_reports_the_ladders_sample_count(tmp_path):
    from aigc.quality import metrics

    if not metrics.evaluator_available():
        pytest.skip("shipped evaluator missing")
    checkpoint = save_untrained_generator(tmp_path / "generator.keras", preset="seed", latent_dim=16)
    result = run_cli_here("eval", "--checkpoint", str(checkpoint), "--n", "50", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["n"] == 50 and report["ladder_n"] == metrics.load_evaluator().info["ladder_n"]
    result = run_cli_here("eval", "--checkpoint", str(checkpoint), "--n", "50")
    assert "50 samples" in result.stdout and "not comparable" in result.stdout, result.stdout


def test_generate_says_1_digit_for_one(tmp_path):
    checkpoint = save_untrained_generator(tmp_path / "generator.keras", preset="seed", latent_dim=16)
    result = run_cli_here("generate", "--checkpoint", str(checkpoint), "--n", "1", "--out", str(tmp_path / "one.png"))
    assert result.returncode == 0 and result.stdout.startswith("wrote 1 digit to "), result
