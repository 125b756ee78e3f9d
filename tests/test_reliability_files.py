"""Damaged files and long sessions: truncated or corrupt generator.keras / status.json /
metrics.jsonl / ckpt give one clear error or a documented recovery; 500 generate calls keep memory flat."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from aigc.engine.checkpoints import CheckpointError, load_generator, read_meta
from aigc.runs.files import append_metrics, read_json, read_metrics
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import read_status
from helpers import run_cli, save_untrained_generator

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
TINY = ["--batch-size", "32", "--train-limit", "256", "--eval-samples", "0", "--threads", "1",
        "--checkpoint-seconds", "1"]


def aigc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return run_cli(*args, timeout=timeout)


def one_error(result: subprocess.CompletedProcess) -> str:
    """The single 'error: ...' line of a failed command that printed no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def cli_trained_run(tmp_path_factory, synthetic_npz) -> Path:
    """A finished 2-epoch run trained by the CLI with TINY, several checkpoints (copied per test that trains on)."""
    run_dir = tmp_path_factory.mktemp("trained") / "runs" / "run"
    result = aigc("train", "--run-dir", str(run_dir), "--data", str(synthetic_npz), "--epochs", "2", *TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    return run_dir


def copy_run(run: Path, tmp_path: Path) -> RunPaths:
    target = tmp_path / "runs" / "run"
    shutil.copytree(run, target)
    return RunPaths(target)


def damaged_versions(good: bytes) -> dict[str, bytes]:
    return {"empty": b"", "truncated": good[: len(good) // 2], "garbage": os.urandom(4096),
            "text": b"{\"state\": \"running\", \"epo", "binary-nul": b"\0" * 512}


# status.json and metrics.jsonl: the readers never raise and never return half a record.

@pytest.mark.parametrize("kind", ["empty", "truncated", "garbage", "text", "binary-nul", "list", "folder"])
def test_damaged_status_reads_as_none(tmp_path, kind):
    paths = RunPaths(tmp_path)
    good = json.dumps({"state": "finished", "epoch": 3}).encode()
    if kind == "folder":
        paths.status.mkdir()
    else:
        paths.status.write_bytes(b"[1, 2]" if kind == "list" else damaged_versions(good)[kind])
    assert read_json(paths.status) is None and read_status(paths) is None


def test_damaged_metrics_keep_every_whole_record(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"epoch": 1}\n\xff\xfe garbage\n[1, 2]\n{"epoch": 2}\n{"epoch": 3, "d_lo')
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2]
    append_metrics(path, {"epoch": 3})  # the trainer after a kill: its record must not glue onto the partial line
    assert [r["epoch"] for r in read_metrics(path)] == [1, 2, 3]
    assert read_metrics(tmp_path / "missing.jsonl") == [] and read_metrics(tmp_path) == []


# generator.keras: the engine loader and the generate CLI give one CheckpointError / one line.

def damaged_generators(good: Path, folder: Path) -> dict[str, Path]:
    files = {}
    for kind, data in damaged_versions(good.read_bytes()).items():
        files[kind] = folder / f"{kind}.keras"
        files[kind].write_bytes(data)
    files["no-meta"] = folder / "no-meta.keras"
    with zipfile.ZipFile(files["no-meta"], "w") as archive:
        archive.writestr("config.json", "{}")
    for member in ("model.weights.h5", "config.json"):
        files[f"bad-{member}"] = folder / f"bad-{member}.keras"
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(files[f"bad-{member}"], "w") as target:
            for item in source.infolist():
                data = source.read(item.filename)
                target.writestr(item, os.urandom(len(data)) if item.filename == member else data)
    return files


def test_damaged_generator_files_raise_checkpoint_error(trained_run, tmp_path):  # conftest's run: read only
    files = damaged_generators(trained_run / "generator.keras", tmp_path)
    for kind, path in files.items():
        with pytest.raises(CheckpointError) as caught:
            load_generator(path)
        message = str(caught.value)
        assert str(path) in message and "\n" not in message.strip(), (kind, message)
    with pytest.raises(CheckpointError, match="folder"):
        load_generator(tmp_path)
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "missing.keras")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["truncated", "garbage", "bad-model.weights.h5"])
def test_generate_cli_with_a_damaged_checkpoint_prints_one_error(trained_run, tmp_path, kind):
    path = damaged_generators(trained_run / "generator.keras", tmp_path)[kind]
    line = one_error(aigc("generate", "--checkpoint", str(path), "--out", str(tmp_path / "grid.png")))
    assert str(path) in line
    assert not (tmp_path / "grid.png").exists()


@pytest.mark.slow
def test_damaged_generator_in_a_run_is_replaced_by_the_next_epoch(cli_trained_run, tmp_path, synthetic_npz):
    """The trainer never reads generator.keras: a damaged one is simply replaced, atomically."""
    paths = copy_run(cli_trained_run, tmp_path)
    paths.generator.write_bytes(paths.generator.read_bytes()[:1000])
    paths.metrics.write_bytes(paths.metrics.read_bytes() + b'{"kind": "epoch", "ep')
    paths.status.write_bytes(b'{"state": "runn')
    result = aigc("train", "--run-dir", str(paths.root), "--data", str(synthetic_npz), "--epochs", "1", *TINY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert read_meta(paths.generator)[1]["epochs"] == 3
    assert read_status(paths)["state"] == "finished" and read_status(paths)["epoch"] == 3
    assert [r["epoch"] for r in read_metrics(paths.metrics) if r.get("kind") == "epoch"] == [1, 2, 3]


# ckpt/: a damaged newest checkpoint or state file falls back to the previous checkpoint; none readable fails clearly.

def checkpoint_prefixes(paths: RunPaths) -> list[Path]:
    """ckpt-N prefixes, oldest first."""
    indexes = sorted(paths.ckpt.glob("ckpt-*.index"), key=lambda p: int(p.stem.split("-")[1]))
    return [p.with_suffix("") for p in indexes]


def data_file(prefix: Path) -> Path:
    return prefix.with_name(prefix.name + ".data-00000-of-00001")


@pytest.mark.slow
def test_damaged_newest_checkpoint_and_state_file_recover_from_the_previous(cli_trained_run, tmp_path, synthetic_npz):
    paths = copy_run(cli_trained_run, tmp_path)
    older, newest = checkpoint_prefixes(paths)[-2:]
    data_file(newest).write_bytes(data_file(newest).read_bytes()[:5000])
    (paths.ckpt / "checkpoint").write_text("garbage that is not a CheckpointState\n")
    result = aigc("train", "--run-dir", str(paths.root), "--data", str(synthetic_npz), "--epochs", "1", "--max-steps",
                  "1", *TINY)  # the run had finished: train one more epoch
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"resumed from {older.name} at epoch" in result.stdout
    status = read_status(paths)
    older_step = int(older.name.split("-")[1])
    assert status["state"] == "stopped" and status["step"] == older_step + 1, "restarted instead of resuming"
    assert newest.name in status["warning"], status.get("warning")


@pytest.mark.slow
def test_no_readable_checkpoint_fails_with_one_clear_error(cli_trained_run, tmp_path, synthetic_npz):
    paths = copy_run(cli_trained_run, tmp_path)
    for prefix in checkpoint_prefixes(paths):
        data_file(prefix).write_bytes(b"\0" * 100)
    before = {p.name: p.read_bytes() for p in paths.ckpt.iterdir()}
    result = aigc("train", "--run-dir", str(paths.root), "--data", str(synthetic_npz), "--epochs", "1", *TINY)
    line = one_error(result)
    assert result.returncode == 1 and "no readable checkpoint" in line and "move that folder aside" in line
    status = read_status(paths)
    assert status["state"] == "failed" and "no readable checkpoint" in status["error"]
    assert status["epoch"] == 2, "the failed attempt must not rewrite the run's progress"
    assert {p.name: p.read_bytes() for p in paths.ckpt.iterdir()} == before, "the damaged files are kept for inspection"


# A long session: 500 Generate requests must not grow memory.

@pytest.mark.slow
def test_500_generate_calls_grow_rss_by_less_than_50_mb(tmp_path):
    import numpy as np
    import psutil

    from aigc.engine.sampling import generate

    save_untrained_generator(tmp_path / "g.keras", base_filters=8)
    generator, config, _card = load_generator(tmp_path / "g.keras")
    process = psutil.Process()
    rng = np.random.default_rng(0)

    def request(i):
        n = int(rng.integers(1, 65))
        digit = None if i % 11 == 0 else int(i % 10)
        images, labels = generate(generator, n, digit, seed=i, truncation=float(rng.uniform(0.1, 2.0)), config=config)
        assert images.shape == (n, 28, 28) and labels.shape == (n,)

    for i in range(30):  # warm-up: tracing, allocator pools
        request(i)
    before = process.memory_info().rss
    for i in range(500):
        request(i)
    grown_mb = (process.memory_info().rss - before) / 2**20
    print(f"RSS grew {grown_mb:.1f} MB over 500 generate calls")
    assert grown_mb < 50
