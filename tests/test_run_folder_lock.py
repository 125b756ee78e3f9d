"""One trainer per run folder, wherever it is: two runs roots cannot both train one folder."""
from __future__ import annotations

import os
import signal
import subprocess

import pytest
from helpers import AIGC, REPO, run_cli, wait_until

from aigc.runs.files import read_json
from aigc.runs.lock import EXIT_BUSY, TrainingLock


@pytest.mark.slow  # a real trainer process
def test_a_second_trainer_with_another_runs_root_is_refused(tmp_path, synthetic_npz):
    """Before: both trained the folder (duplicated epoch records, steps going backwards, interleaved checkpoints)."""
    run_dir = tmp_path / "shared-run"
    env = dict(os.environ, AIGC_RUNS_DIR=str(tmp_path / "root-a"), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    first = subprocess.Popen([*AIGC, "train", "--run-dir", str(run_dir), "--epochs", "1", "--data",
                              str(synthetic_npz)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: TrainingLock(run_dir).is_held() or first.poll() is not None, timeout=60, every=0.01,
                   what="the first trainer's run-folder lock")
        second = run_cli("train", "--run-dir", str(run_dir), "--epochs", "1", "--data", str(synthetic_npz),
                         env={"AIGC_RUNS_DIR": str(tmp_path / "root-b")}, timeout=120)
        assert second.returncode == EXIT_BUSY, second.stderr
        assert "trainer holds this run folder" in second.stderr and "one job at a time" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=120)
    assert (read_json(run_dir / "status.json") or {}).get("state") == "stopped"
