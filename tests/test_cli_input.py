"""Bad input on the command line: one clear error line, a non-zero exit, no traceback, nothing lost.

Each bad flag runs through aigc.cli.main in this process (helpers.run_cli_here); the last tests start real
processes, as users type the commands."""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from helpers import run_cli, run_cli_here

ROOT = Path(__file__).resolve().parent.parent


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_clear_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exactly one 'error: ...' line on stderr, exit code != 0, no traceback; returns the line."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]


def snapshot(folder: Path) -> dict:
    """{relative path: (sha256, mtime_ns)} of every file under folder."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def run_dir(tmp_path) -> Path:
    """A finished-looking run directory whose files must survive every bad invocation unchanged."""
    run = tmp_path / "runs" / "demo"
    (run / "ckpt").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "finished", "epoch": 3, "total_epochs": 3, "step": 24}))
    (run / "metrics.jsonl").write_text('{"kind": "epoch", "epoch": 3, "step": 24, "d_loss": 1.0}\n')
    (run / "ckpt" / "checkpoint").write_text('model_checkpoint_path: "ckpt-24"\n')
    (run / "ckpt" / "ckpt-24.index").write_bytes(b"index bytes")
    (run / "generator.keras").write_bytes(b"not really a model, but it must not change")
    return run


BAD_TRAIN = [
    (["--epochs", "-1"], "--epochs"),
    (["--epochs", "0"], "--epochs"),
    (["--epochs", str(10**9)], "--epochs"),
    (["--epochs", "NaN"], "--epochs"),
    (["--epochs", "inf"], "--epochs"),
    (["--epochs", "ten"], "--epochs"),
    (["--epochs", "1.5"], "--epochs"),
    (["--epochs", ""], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr-g", "nan"], "--lr-g"),
    (["--lr-d", "-0.1"], "--lr-d"),
    (["--ema-decay", "nan"], "--ema-decay"),
    (["--ema-decay", "1.5"], "--ema-decay"),
    (["--label-smoothing", "1e9"], "--label-smoothing"),
    (["--checkpoint-seconds", "inf"], "--checkpoint-seconds"),
    (["--checkpoint-seconds", "0"], "--checkpoint-seconds"),
    (["--max-steps", "0"], "--max-steps"),
    (["--seed", "abc"], "--seed"),
    (["--seed", "-5"], "--seed"),
    (["--preset", "gpt"], "--preset"),
    (["--precision", "fp8"], "--precision"),
    (["--data", "no/such/mnist.npz"], "--data"),
    (["--init-from", "no/such/generator.keras"], "--init-from"),
    (["--no-such-flag"], "unrecognized"),
]


@pytest.mark.parametrize("extra,needle", BAD_TRAIN, ids=[" ".join(a) or "empty" for a, _ in BAD_TRAIN])
def test_train_rejects_bad_flags_and_touches_nothing(run_dir, extra, needle):
    before = snapshot(run_dir.parent)
    result = run_cli_here("train", "--run-dir", str(run_dir), *extra, cwd=run_dir.parent.parent)
    assert_clear_error(result, needle)
    assert snapshot(run_dir.parent) == before, "a rejected command changed the runs folder"


def test_train_run_dir_that_is_a_file(tmp_path):
    target = tmp_path / "runs" / "file"
    target.parent.mkdir()
    target.write_text("keep me")
    assert_clear_error(run_cli("train", "--run-dir", str(target), cwd=tmp_path), "not a folder")
    assert target.read_text() == "keep me"


BAD_GENERATE = [
    (["--digit", "11"], "--digit"),
    (["--digit", "-1"], "--digit"),
    (["--digit", "seven"], "--digit"),
    (["--digit", "3.5"], "--digit"),
    (["--n", "0"], "--n"),
    (["--n", str(10**6)], "--n"),
    (["--n", "-3"], "--n"),
    (["--n", "many"], "--n"),
    (["--n", "nan"], "--n"),
    (["--seed", "abc"], "--seed"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "1e3"], "--seed"),
    (["--truncation", "nan"], "--truncation"),
    (["--truncation", "0"], "--truncation"),
    (["--truncation", "5"], "--truncation"),
    (["--scale", "1000"], "--scale"),
    (["--ncol", "0"], "--ncol"),
    (["--out", "digits.jpg"], ".png"),
    (["--out", "no/such/folder/digits.png"], "does not exist"),
    (["--checkpoint", "no/such/generator.keras"], "not found"),
]


@pytest.mark.parametrize("extra,needle", BAD_GENERATE, ids=[" ".join(a) for a, _ in BAD_GENERATE])
def test_generate_rejects_bad_flags(tmp_path, extra, needle):
    existing = tmp_path / "grid.png"
    existing.write_bytes(b"an earlier grid")
    result = run_cli_here("generate", *extra, cwd=tmp_path)
    assert_clear_error(result, needle)
    assert existing.read_bytes() == b"an earlier grid"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"], "nothing new may appear"


def test_generate_checkpoint_is_a_folder(tmp_path):
    assert_clear_error(run_cli("generate", "--checkpoint", str(tmp_path), cwd=tmp_path), "folder")


def test_no_command_and_unknown_command(tmp_path):
    assert_clear_error(run_cli(cwd=tmp_path), "command")
    assert_clear_error(run_cli("fly", cwd=tmp_path), "invalid choice")
