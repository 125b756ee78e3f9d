"""Faults that machines cause: kill -9 at random moments, a full disk, an unwritable run dir,
two Start presses at once, a stale lock. Real trainer processes on tiny synthetic data."""
from __future__ import annotations

import errno
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aigc.engine.checkpoints import read_meta
from aigc.runs.files import read_json, read_metrics
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import read_status
from aigc.runs.lock import TrainingLock
from helpers import wait_until

ROOT = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
CHECKPOINT_S = 1.0
SLACK_S = 10.0  # one slow step plus the end-of-epoch saves on a busy 2-core machine
STEPS_PER_EPOCH = 8  # --train-limit 256 / --batch-size 32
TINY = ["--batch-size", "32", "--train-limit", "256", "--eval-samples", "0", "--threads", "1",
        "--checkpoint-seconds", str(CHECKPOINT_S)]


def spawn(run_dir: Path, data: Path, *extra: str, prefix: list[str] | None = None,
          out_dir: Path | None = None) -> subprocess.Popen:
    """Start `python -m aigc train` on the tiny setup; stdout/stderr go to a file beside the run."""
    out = open((out_dir or run_dir.parent) / f"{run_dir.name}.{time.time_ns()}.out", "w")
    command = prefix or [sys.executable, "-m", "aigc"]
    # Each run's parent folder is its own runs root (the lock's scope): lanes in parallel do not collide.
    process = subprocess.Popen([*command, "train", "--run-dir", str(run_dir), "--data", str(data), *TINY, *extra],
                               cwd=ROOT, env=dict(ENV, AIGC_RUNS_DIR=str(run_dir.parent)), stdout=out,
                               stderr=subprocess.STDOUT, text=True)
    process.output_path = Path(out.name)
    out.close()
    return process


def output(process: subprocess.Popen) -> str:
    return process.output_path.read_text(errors="replace")


def wait_for(predicate, timeout: float, what: str, process: subprocess.Popen | None = None):
    return wait_until(predicate, timeout=timeout, what=what, process=process, every=0.05,
                      details=lambda: output(process)[-3000:] if process else "")


def running_as(paths: RunPaths, pid: int):
    status = read_json(paths.status)
    return status if status and status.get("pid") == pid and status.get("state") == "running" else None


def finished_by(paths: RunPaths, process: subprocess.Popen):
    """The status, once this process has exited 0 with the run finished (a resume of a run killed after its
    last step's checkpoint, before it could write 'finished', has nothing to train and is never 'running')."""
    if process.poll() != 0:
        return None
    status = read_json(paths.status)
    return status if status and status.get("state") == "finished" else None


def newest_checkpoint(paths: RunPaths) -> tuple[int, float]:
    """(step of the newest checkpoint per ckpt/checkpoint, its mtime); (-1, 0) before the first."""
    state = paths.ckpt / "checkpoint"
    if not state.exists():
        return -1, 0.0
    match = re.search(r'^model_checkpoint_path: "(.*?)"', state.read_text(), re.M)
    assert match, f"ckpt/checkpoint is corrupt: {state.read_text()!r}"
    prefix = paths.ckpt / Path(match.group(1)).name
    assert prefix.with_suffix(".index").is_file() and prefix.with_name(prefix.name + ".data-00000-of-00001").is_file()
    return int(prefix.name.rsplit("-", 1)[1]), state.stat().st_mtime


def assert_run_dir_intact(paths: RunPaths) -> None:
    """Every file a reader may open is complete: status parses, metrics parse, generator is a whole zip."""
    if paths.status.exists():
        assert read_json(paths.status) is not None, f"corrupt status.json: {paths.status.read_bytes()[:200]!r}"
        assert read_status(paths)["state"] in ("failed", "finished", "stopped")
    if paths.metrics.exists():
        lines = paths.metrics.read_text().splitlines(keepends=True)
        complete = [line for line in lines if line.endswith("\n")]
        assert len(read_metrics(paths.metrics)) == len(complete), "a complete metrics line does not parse"
    for model in (paths.generator, paths.discriminator):
        if model.exists():
            with zipfile.ZipFile(model) as archive:
                assert archive.testzip() is None, f"{model.name} has a damaged member"
            read_meta(model)
    for sample in paths.sample_files():
        assert sample.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and sample.stat().st_size > 100


PHASES = ("after a checkpoint", "first steps", "after a checkpoint", "start-up", "after a checkpoint")


def continue_args(paths: RunPaths) -> list[str]:
    """--resume, or two more epochs when the run had already finished (a finished run does not resume)."""
    return ["--epochs", "2"] if (read_status(paths) or {}).get("state") == "finished" else ["--resume"]


def kill_lane(lane: Path, data: Path, kills: int, seed: int) -> list[dict]:
    """Start, kill -9 at a random moment, check, resume; `kills` times on one run. Returns what happened.

    Moments are drawn per phase, not per wall clock, so a slow machine still spreads them over
    start-up (import, build, restore), the first steps and steady training with checkpoints.
    """
    rng = random.Random(seed)
    paths = RunPaths(lane / "runs" / "run")
    paths.root.parent.mkdir(parents=True)
    history, floor = [], -1
    for index in range(kills):
        process = spawn(paths.root, data, *(["--epochs", "6"] if index == 0 else continue_args(paths)))
        event = {"kill": index, "phase": PHASES[index % len(PHASES)] if index else "first steps"}
        started = None
        if event["phase"] == "start-up":
            time.sleep(rng.uniform(0.3, 8.0))
        else:
            status = wait_for(lambda: running_as(paths, process.pid) or finished_by(paths, process), 180,
                              "state running (or finished: the last kill landed after the last step's checkpoint)",
                              process)
            # The resumed counters are exactly those of the newest checkpoint: nothing went backwards.
            assert status["step"] == max(floor, 0), (status["step"], floor)
            assert not status.get("warning"), status["warning"]
            started = time.time()
            if status["state"] == "finished":
                pass  # nothing left to train: the next round adds epochs (continue_args)
            elif event["phase"] == "after a checkpoint":
                wait_for(lambda: process.poll() is not None or newest_checkpoint(paths)[1] > started, 180,
                         "a checkpoint by this process", process)
                time.sleep(rng.uniform(0.0, 5.0))
            else:
                time.sleep(rng.uniform(0.0, 3.0))
        finished_early = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        killed_at = time.time()
        assert "Traceback" not in output(process)
        assert_run_dir_intact(paths)
        step, saved_at = newest_checkpoint(paths)
        assert step >= floor, f"the newest checkpoint went backwards: {step} < {floor}"
        floor = step
        if started and not finished_early:
            event["lost_s"] = round(killed_at - max(saved_at, started), 2)
            assert event["lost_s"] <= CHECKPOINT_S + SLACK_S, event
        history.append(dict(event, checkpoint_step=step, finished_early=finished_early))
    return history


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill_9_twenty_times_every_resume_works(tmp_path, synthetic_npz):
    """Two lanes of 10 kills (two cores); then one clean resume must finish the run exactly."""
    with ThreadPoolExecutor(2) as pool:
        lanes = [pool.submit(kill_lane, tmp_path / f"lane{i}", synthetic_npz, 10, seed=i) for i in range(2)]
        histories = [lane.result() for lane in lanes]
    print(json.dumps(histories))  # shown with -s: where each kill landed and the seconds of work lost
    lost = [e["lost_s"] for h in histories for e in h if "lost_s" in e]
    assert max(lost) <= CHECKPOINT_S + SLACK_S
    assert len({e["checkpoint_step"] for h in histories for e in h}) >= 6, "the kills should land as the run advances"
    for lane in range(2):
        paths = RunPaths(tmp_path / f"lane{lane}" / "runs" / "run")
        process = spawn(paths.root, synthetic_npz, "--resume")
        assert process.wait(timeout=300) == 0, output(process)[-3000:]
        status = read_status(paths)
        assert status["state"] == "finished" and not status.get("warning")
        assert status["epoch"] == status["total_epochs"] >= 6
        assert status["step"] == status["total_epochs"] * STEPS_PER_EPOCH, "a step was lost or counted twice"
        epochs = [r["epoch"] for r in read_metrics(paths.metrics) if r.get("kind") == "epoch"]
        assert epochs == sorted(set(epochs)) and epochs[-1] == status["total_epochs"]
        leftovers = [str(p.relative_to(paths.root)) for p in paths.root.rglob("*tmp*")]
        assert not leftovers, f"temporary files left behind: {leftovers}"


FILL_SCRIPT = """
import errno, sys
from pathlib import Path
import aigc.runs.files, aigc.engine.trainer
real = aigc.runs.files.atomic_write_bytes
state = Path(sys.argv[1]) / "ckpt" / "checkpoint"
def full_disk(path, data):
    if state.exists():  # the disk fills up once the first checkpoint is on it
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    return real(path, data)
aigc.runs.files.atomic_write_bytes = aigc.engine.trainer.atomic_write_bytes = full_disk
from aigc.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_a_kill_after_the_last_checkpoint_resumes_straight_to_finished(tmp_path, synthetic_npz):
    """CI once killed a lane's trainer after its last step's checkpoint but before it wrote 'finished'; the next
    resume has nothing to train, so it is never 'running': it must exit 0 as finished with the same counters, and
    the kill lane must take that as a resume (it waited for 'running' and failed)."""
    paths = RunPaths(tmp_path / "runs" / "run")
    paths.root.parent.mkdir(parents=True)
    first = spawn(paths.root, synthetic_npz, "--epochs", "1")
    assert first.wait(timeout=300) == 0, output(first)[-3000:]
    finished = read_json(paths.status)
    assert finished["state"] == "finished"
    # What a kill -9 in that window leaves: the last checkpoint on disk, the status still "running".
    paths.status.write_text(json.dumps(dict(finished, state="running", pid=first.pid)))
    assert read_status(paths)["state"] == "failed" and continue_args(paths) == ["--resume"]
    resume = spawn(paths.root, synthetic_npz, *continue_args(paths))
    status = wait_for(lambda: running_as(paths, resume.pid) or finished_by(paths, resume), 180, "running or finished",
                      resume)
    assert status["state"] == "finished" and status["step"] == finished["step"] == STEPS_PER_EPOCH
    assert resume.wait(timeout=30) == 0 and "Traceback" not in output(resume)


@pytest.mark.slow
def test_disk_full_fails_with_reason_and_keeps_the_checkpoint(tmp_path, synthetic_npz):
    """Every atomic write fails with ENOSPC after the first checkpoint: state failed with the reason."""
    paths = RunPaths(tmp_path / "runs" / "full")
    paths.root.mkdir(parents=True)
    process = spawn(paths.root, synthetic_npz, "--epochs", "50",
                    prefix=[sys.executable, "-c", FILL_SCRIPT, str(paths.root)])
    assert process.wait(timeout=300) == 1, output(process)[-3000:]
    text = output(process)
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: training failed: OSError: [Errno 28]"), text[-2000:]
    status = read_json(paths.status)
    assert status["state"] == "failed" and "No space left on device" in status["error"], status
    assert_checkpoint_restores(paths, synthetic_npz)


@pytest.mark.slow
def test_real_full_disk_on_a_small_tmpfs(tmp_path, synthetic_npz):
    """A real ENOSPC: the run dir sits on a 160 MB tmpfs that we fill up after the first checkpoint."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and permission to mount a tmpfs")
    try:
        paths = RunPaths(mount / "runs" / "run")
        paths.root.mkdir(parents=True)
        process = spawn(paths.root, synthetic_npz, "--epochs", "50", out_dir=tmp_path)
        wait_for(lambda: newest_checkpoint(paths)[0] > 0, 180, "the first checkpoint", process)
        fill(mount / "filler")
        assert process.wait(timeout=180) == 1, output(process)[-3000:]
        text = output(process)
        assert "Traceback" not in text
        errors = [line for line in text.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "training failed" in errors[0], text[-3000:]
        status = read_json(paths.status)
        assert status["state"] == "failed" and status["error"], status
        print(status["error"])
        (mount / "filler").unlink()
        assert_checkpoint_restores(paths, synthetic_npz, out_dir=tmp_path)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(path: Path) -> None:
    """Write until the file system says ENOSPC (1 MB chunks, then 4 kB ones)."""
    with open(path, "wb", buffering=0) as handle:
        for chunk in (b"\0" * 2**20, b"\0" * 4096):
            while True:
                try:
                    handle.write(chunk)
                except OSError as error:
                    assert error.errno == errno.ENOSPC
                    break


@pytest.mark.slow
def test_unwritable_status_exits_nonzero_with_reason_on_stderr(tmp_path, synthetic_npz):
    """status.json turns into a folder mid-run: nothing can record the failure, so stderr must."""
    paths = RunPaths(tmp_path / "runs" / "blocked")
    paths.root.mkdir(parents=True)
    process = spawn(paths.root, synthetic_npz, "--epochs", "50")
    wait_for(lambda: newest_checkpoint(paths)[0] > 0, 180, "the first checkpoint", process)

    def block():
        try:
            paths.status.unlink(missing_ok=True)
            paths.status.mkdir()
            return True
        except OSError:  # the trainer replaced the file between our two calls
            return False
    wait_for(block, 30, "status.json replaced by a folder")
    assert process.wait(timeout=180) == 1, output(process)[-3000:]
    text = output(process)
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "status.json could not be updated" in errors[0] and "Is a directory" in errors[0]
    paths.status.rmdir()
    assert_checkpoint_restores(paths, synthetic_npz)


def assert_checkpoint_restores(paths: RunPaths, data: Path, out_dir: Path | None = None) -> None:
    """The newest checkpoint is whole: a resume restores exactly its step without skipping any."""
    step, _ = newest_checkpoint(paths)
    assert step > 0
    process = spawn(paths.root, data, *continue_args(paths), "--max-steps", "1", out_dir=out_dir)
    assert process.wait(timeout=300) == 0, output(process)[-3000:]
    assert f"ckpt-{step} at epoch" in output(process)
    status = read_status(paths)
    assert status["state"] == "stopped" and status["step"] == step + 1 and not status.get("warning")


START_AT_SCRIPT = """
import sys, time
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
from aigc.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_two_starts_at_the_same_moment_make_exactly_one_job(tmp_path, synthetic_npz):
    runs_root = tmp_path / "runs"
    runs_root.mkdir()
    start_at = str(time.time() + 3.0)
    processes = [spawn(runs_root / f"press{i}", synthetic_npz, "--max-steps", "1",
                       prefix=[sys.executable, "-c", START_AT_SCRIPT, start_at]) for i in range(3)]
    codes = [p.wait(timeout=300) for p in processes]
    assert sorted(codes) == [0, 3, 3], [output(p) for p in processes]  # 3: another job holds the lock
    for process, code in zip(processes, codes):
        if code == 3:
            assert output(process).strip().startswith("error: another training job is running")
    assert len([d for d in runs_root.iterdir() if (d / "status.json").exists()]) == 1
    assert TrainingLock(runs_root).holder() is None, "the lock is free again after the job"


HOLD_SCRIPT = """
import sys, time
from aigc.runs.lock import TrainingLock
assert TrainingLock(sys.argv[1]).acquire(sys.argv[1])
print("held", flush=True)
time.sleep(120)
"""


def test_stale_lock_of_a_killed_process_is_recovered(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(tmp_path)], env=ENV, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = TrainingLock(tmp_path)
        assert not lock.acquire() and lock.holder()["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert lock.holder() is None and lock.acquire(), "the kernel drops the flock of a dead process"
    lock.release()


def test_leftover_lock_file_with_a_dead_pid_is_free(tmp_path):
    (tmp_path / ".train.lock").write_text(json.dumps({"pid": 999_999_999, "run_dir": "x", "since": 0}))
    lock = TrainingLock(tmp_path)
    assert lock.holder() is None
    assert lock.acquire()
    assert json.loads((tmp_path / ".train.lock").read_text())["pid"] == os.getpid()
    lock.release()


def test_running_status_of_a_dead_trainer_reads_as_failed(tmp_path):
    paths = RunPaths(tmp_path)
    paths.status.write_text(json.dumps({"state": "running", "pid": 999_999_999, "epoch": 2}))
    status = read_status(paths)
    assert status["state"] == "failed" and status["interrupted"] and "ended without saying why" in status["error"]
    assert status["epoch"] == 2
