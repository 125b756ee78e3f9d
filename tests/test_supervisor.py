"""Container stop: PID 1 (aigc.serve.supervisor) stops the training job gracefully before the server. No Docker."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aigc.runs.layout import RunPaths
from aigc.runs.lock import TrainingLock

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")

# A stand-in web server: sleeps until SIGTERM, then records when it stopped.
FAKE_SERVER = """
import signal, sys, time
def bye(*_):
    open(sys.argv[1], "w").write(repr(time.time()))
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("serving", flush=True)
while True:
    time.sleep(0.1)
"""

# A stand-in trainer: holds the lock like `python -m aigc train`, saves for 1 s after SIGTERM, ends 'stopped'.
FAKE_TRAINER = """
import json, signal, sys, time
from pathlib import Path
from aigc.runs.lock import TrainingLock
runs, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
lock = TrainingLock(runs)
assert lock.acquire(run_dir)
status = run_dir / "status.json"
status.write_text(json.dumps({"state": "running"}))
asked = []
signal.signal(signal.SIGTERM, lambda *_: asked.append(time.time()))
print("training", flush=True)
while not asked:
    time.sleep(0.05)
time.sleep(1.0)  # finish the step, write the checkpoint
status.write_text(json.dumps({"state": "stopped", "stopped_at": time.time(), "stop_file": (run_dir / "STOP").exists()}))
lock.release()
"""


def start_supervisor(tmp_path: Path, runs: Path, *, grace: str = "30") -> subprocess.Popen:
    server_marker = tmp_path / "server-stopped"
    env = dict(ENV, AIGC_RUNS_DIR=str(runs), AIGC_STOP_GRACE_S=grace)
    process = subprocess.Popen([sys.executable, "-m", "aigc.serve.supervisor", sys.executable, "-c", FAKE_SERVER,
                                str(server_marker)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout.readline().strip() == "serving"
    return process


def test_sigterm_stops_the_trainer_gracefully_before_the_server(tmp_path):
    """Issue 11: `docker stop` SIGKILLed the trainer (it runs in its own session; nothing forwarded SIGTERM)."""
    runs = tmp_path / "runs"
    run_dir = runs / "run-1"
    run_dir.mkdir(parents=True)
    trainer = subprocess.Popen([sys.executable, "-c", FAKE_TRAINER, str(runs), str(run_dir)], env=ENV,
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    supervisor = None
    try:
        assert trainer.stdout.readline().strip() == "training"
        supervisor = start_supervisor(tmp_path, runs)
        supervisor.send_signal(signal.SIGTERM)  # what docker stop does to PID 1
        assert supervisor.wait(timeout=30) == 0
        assert trainer.wait(timeout=5) == 0
    finally:
        for process in (trainer, supervisor):
            if process is not None and process.poll() is None:
                process.kill()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "stopped" and status["stop_file"], status
    server_stopped = float((tmp_path / "server-stopped").read_text())
    assert status["stopped_at"] <= server_stopped, "the server must outlive the trainer's checkpoint"
    assert TrainingLock(runs).holder() is None


def test_sigterm_without_a_job_stops_the_server_at_once(tmp_path):
    """With a grace of an hour, only a supervisor that waits for no job ends within the 60 s bound."""
    supervisor = start_supervisor(tmp_path, tmp_path / "runs", grace="3600")
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 0
    assert (tmp_path / "server-stopped").exists()


def test_without_a_lock_holder_stopping_training_waits_for_nothing(tmp_path, monkeypatch):
    from aigc.serve import supervisor

    monkeypatch.setattr(supervisor.time, "sleep", lambda seconds: pytest.fail(f"waited {seconds} s for no job"))
    assert supervisor.Supervisor(["true"], runs_root=tmp_path, grace_s=3600).stop_training() is None


def test_the_server_exiting_ends_the_supervisor_with_its_code(tmp_path):
    env = dict(ENV, AIGC_RUNS_DIR=str(tmp_path / "runs"))
    result = subprocess.run([sys.executable, "-m", "aigc.serve.supervisor", sys.executable, "-c",
                             "import sys; sys.exit(3)"], cwd=ROOT, env=env, timeout=30)
    assert result.returncode == 3


def test_grace_setting(monkeypatch):
    from aigc.serve import supervisor

    monkeypatch.setenv("AIGC_STOP_GRACE_S", "12")
    assert supervisor.grace_seconds() == 12
    for bad in ("soon", "-1", "1e9"):
        monkeypatch.setenv("AIGC_STOP_GRACE_S", bad)
        assert supervisor.grace_seconds() == supervisor.DEFAULT_GRACE_S


@pytest.mark.slow
def test_container_stop_leaves_a_real_run_stopped_with_a_checkpoint(tmp_path, synthetic_npz):
    """The real trainer under the supervisor's stop: checkpoint written, state 'stopped', resumable."""
    runs = tmp_path / "runs"
    paths = RunPaths(runs / "run-real")
    log = open(tmp_path / "trainer.out", "w")
    trainer = subprocess.Popen([sys.executable, "-m", "aigc", "train", "--run-dir", str(paths.root), "--data",
                                str(synthetic_npz), "--epochs", "500", "--batch-size", "32", "--train-limit", "256",
                                "--eval-samples", "0", "--threads", "1"], cwd=ROOT,
                               env=dict(ENV, AIGC_RUNS_DIR=str(runs)), stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    supervisor = None
    try:
        deadline = time.time() + 180
        while time.time() < deadline and int((_status(paths) or {}).get("step") or 0) < 2:
            assert trainer.poll() is None, (tmp_path / "trainer.out").read_text()[-2000:]
            time.sleep(0.2)
        assert _status(paths)["state"] == "running"
        supervisor = start_supervisor(tmp_path, runs, grace="60")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=90) == 0
        assert trainer.wait(timeout=10) is not None
    finally:
        for process in (trainer, supervisor):
            if process is not None and process.poll() is None:
                process.kill()
        log.close()
    status = _status(paths)
    assert status["state"] == "stopped", status
    assert paths.ckpt.is_dir() and any(paths.ckpt.glob("ckpt-*.index")), "a checkpoint was saved"


def _status(paths: RunPaths) -> dict | None:
    try:
        return json.loads(paths.status.read_text())
    except (OSError, ValueError):
        return None


def test_a_trainer_on_another_host_gets_the_stop_file_but_no_signal(tmp_path, monkeypatch):
    """On shared storage the lock's pid may belong to another machine: never signal it from here."""
    from aigc.serve import supervisor
    from aigc.runs.lock import TrainingLock

    run = RunPaths(tmp_path / "run")
    run.root.mkdir()
    lock = TrainingLock(tmp_path)
    assert lock.acquire(run.root)
    record = json.loads(lock.path.read_text())
    lock.path.write_text(json.dumps(dict(record, host="another-host", pid=os.getpid())))
    signals = []
    monkeypatch.setattr(supervisor.os, "kill", lambda pid, sig: signals.append((pid, sig)))
    try:
        supervisor.Supervisor(["true"], runs_root=tmp_path, grace_s=0.2).stop_training()
    finally:
        lock.release()
    assert run.stop.exists() and signals == []
