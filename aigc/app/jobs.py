"""Background training jobs for the app: launch `python -m aigc train`, stop, resume, find runs.

No Streamlit and no TensorFlow here. The trainer runs in its own process session and the app
only reads its run directory (see DESIGN.md); the trainer's own lock guarantees one job.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from aigc.app.hosting import Policy, clamp_epochs
from aigc.engine.spec import PRESETS
from aigc.runs.files import read_json
from aigc.runs.layout import RunPaths, list_runs
from aigc.runs.lifecycle import ACTIVE_STATES, read_status, request_stop
from aigc.runs.lock import TrainingLock
from aigc.settings import EXTRA_ARGS_ENV, ROOT, THREADS_ENV, checkpoint_dir, env, runs_root, shipped_generator

TRAINER_NICE = 10  # the page must stay responsive while the trainer computes
START_WAIT_S = 8.0
BATCH_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class GeneratorChoice:
    """One entry of the generator chooser: a label for people, a path chosen by the server."""

    label: str
    path: Path
    kind: str  # shipped | seed | run


def generator_choices(*, root: Path | None = None) -> list[GeneratorChoice]:
    """Existing generators: shipped dcgan, shipped seed preset, the newest run that saved one."""
    choices = []
    for preset, label, kind in (("dcgan", "Shipped (dcgan, conditional)", "shipped"),
                                ("seed", "Seed preset (unconditional)", "seed")):
        if shipped_generator(preset).is_file():
            choices.append(GeneratorChoice(label, shipped_generator(preset), kind))
    for paths in list_runs(root or runs_root()):
        if paths.generator.is_file():
            choices.append(GeneratorChoice(f"Newest trained run ({paths.root.name})", paths.generator, "run"))
            break
    return choices


@dataclass(frozen=True)
class Job:
    """The run the Train panel shows: the running job if any, else the newest run."""

    paths: RunPaths | None
    status: dict | None
    active: bool
    holder: dict | None

    @property
    def name(self) -> str:
        return self.paths.root.name if self.paths else "(unknown)"


def current_job(*, root: Path | None = None) -> Job:
    """The running job (from the lock holder) or else the newest run; paths None when there is none."""
    root = root or runs_root()
    holder = TrainingLock(root).holder()
    if holder is not None:
        run_dir = holder.get("run_dir")
        paths = RunPaths(Path(run_dir)) if run_dir else None
        return Job(paths, read_status(paths) if paths else None, True, holder)
    runs = list_runs(root)
    if not runs:
        return Job(None, None, False, None)
    status = read_status(runs[0])
    return Job(runs[0], status, bool(status and status.get("state") in ACTIVE_STATES), None)


@dataclass(frozen=True)
class JobRequest:
    """What the Train panel asks for (validated here, never trusted)."""

    epochs: int = 1
    batch_size: int = 128
    preset: str = "dcgan"
    init: str = "shipped"  # shipped | scratch
    lr_g: float | None = None
    lr_d: float | None = None
    data: str | None = None


@dataclass(frozen=True)
class StartResult:
    ok: bool
    message: str
    paths: RunPaths | None = None


def validate_request(request: JobRequest, policy: Policy) -> str | None:
    """A message saying what is wrong with the request, or None when it may run."""
    epochs, problem = clamp_epochs(request.epochs, policy)
    if problem:
        return problem
    if request.preset not in PRESETS:
        return f"unknown preset {request.preset!r}; choose one of {', '.join(PRESETS)}"
    if request.batch_size not in BATCH_SIZES:
        return f"batch size must be one of {', '.join(map(str, BATCH_SIZES))}"
    for name, rate in (("generator", request.lr_g), ("discriminator", request.lr_d)):
        if rate is not None and not (0 < rate <= 0.1):
            return f"the {name} learning rate must be in (0, 0.1], got {rate}"
    if request.init not in ("shipped", "scratch"):
        return "start must be 'shipped' (train more) or 'scratch'"
    if request.init == "shipped" and not shipped_generator(request.preset).is_file():
        return f"no shipped {request.preset} weights to train more from; choose 'from scratch'"
    return None


def trainer_args(request: JobRequest, *, run_dir: Path) -> list[str]:
    """CLI arguments of `python -m aigc train` for a new job."""
    args = ["--run-dir", str(run_dir), "--epochs", str(int(request.epochs)), "--preset", request.preset,
            "--batch-size", str(request.batch_size)]
    if request.init == "shipped":
        args += ["--init-from", str(shipped_generator(request.preset))]
    if request.lr_g is not None:
        args += ["--lr-g", repr(float(request.lr_g))]
    if request.lr_d is not None:
        args += ["--lr-d", repr(float(request.lr_d))]
    if request.data:
        args += ["--data", str(request.data)]
    return args + _runtime_args()


def _runtime_args() -> list[str]:
    threads = env(THREADS_ENV) or str(max(1, (os.cpu_count() or 2) - 1))
    return ["--nice", str(TRAINER_NICE), "--threads", threads] + shlex.split(env(EXTRA_ARGS_ENV))


def start_job(request: JobRequest, *, policy: Policy, root: Path | None = None) -> StartResult:
    """Launch a new job unless one runs, the cooldown holds, or the request is invalid."""
    root = root or runs_root()
    problem = validate_request(request, policy) or _busy(root, policy)
    if problem:
        return StartResult(False, problem)
    paths = RunPaths(_new_run_dir(root))
    result = _launch(trainer_args(request, run_dir=paths.root), paths, started="started")
    if not result.ok and not paths.status.exists():
        shutil.rmtree(paths.root, ignore_errors=True)  # the trainer refused at once: leave no empty run behind
        return StartResult(False, result.message)
    return result


def resume_job(paths: RunPaths, *, policy: Policy, root: Path | None = None) -> StartResult:
    """Continue a stopped or failed run from its latest checkpoint to its recorded total epochs."""
    root = root or runs_root()
    status = read_status(paths) or {}
    if status.get("state") in ACTIVE_STATES:
        return StartResult(False, f"{paths.root.name} is still running")
    problem = _busy(root, policy)
    if problem:
        return StartResult(False, problem)
    args = ["--run-dir", str(paths.root), "--resume"]
    if status.get("batch_size"):
        args += ["--batch-size", str(int(status["batch_size"]))]
    data = ((read_json(paths.config) or {}).get("data") or "keras")
    if data != "keras":
        args += ["--data", str(data)]
    return _launch(args + _runtime_args(), paths, started="resumed")


def stop_job(paths: RunPaths) -> str:
    """Ask the trainer to stop after its current step; it checkpoints and ends as 'stopped'."""
    request_stop(paths)
    return f"asked {paths.root.name} to stop; it finishes the current step and saves a checkpoint"


def _busy(root: Path, policy: Policy) -> str | None:
    holder = TrainingLock(root).holder()
    if holder is not None:
        name = Path(holder.get("run_dir") or "?").name
        return f"a training job is already running ({name}, pid {holder.get('pid')}); one job at a time"
    wait = cooldown_remaining(root=root, policy=policy)
    if wait > 0:
        return f"please wait {wait:.0f} s before the next job (cooldown between jobs on this server)"
    return None


def cooldown_remaining(*, root: Path, policy: Policy, now: float | None = None) -> float:
    """Seconds until the next job may start: the cooldown measured from the newest run's last update."""
    if policy.cooldown_s <= 0:
        return 0.0
    runs = list_runs(root)
    if not runs:
        return 0.0
    status = read_json(runs[0].status) or {}
    last = max(float(status.get(key) or 0.0) for key in ("started_at", "updated_at", "finished_at"))
    return max(0.0, policy.cooldown_s - ((now or time.time()) - last))


def _new_run_dir(root: Path) -> Path:
    """Create and return a fresh run folder (mkdir is atomic: two sessions never share one)."""
    stamp = time.strftime("run-%Y%m%d-%H%M%S")
    root.mkdir(parents=True, exist_ok=True)
    for index in range(1, 1000):
        candidate = root / (stamp if index == 1 else f"{stamp}-{index}")
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run folder under {root}")


def _launch(args: list[str], paths: RunPaths, *, started: str) -> StartResult:
    """Popen the trainer in its own session, output to train.log; wait until it writes status.json."""
    paths.root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), PYTHONUNBUFFERED="1")
    before = paths.status.stat().st_mtime_ns if paths.status.exists() else None
    with open(paths.log, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "aigc", "train", *args], cwd=ROOT, env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    # Reap the child when it exits so it never lingers as a zombie (no Streamlit call here).
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    deadline = time.time() + START_WAIT_S
    while time.time() < deadline:
        if paths.status.exists() and paths.status.stat().st_mtime_ns != before:
            return StartResult(True, f"{started} {paths.root.name} (pid {process.pid})", paths)
        if process.poll() is not None:
            return StartResult(False, _launch_failure(paths), paths)
        time.sleep(0.1)
    return StartResult(True, f"{started} {paths.root.name} (pid {process.pid}); the trainer is starting", paths)


def _launch_failure(paths: RunPaths) -> str:
    last = tail_log(paths, lines=3).strip().splitlines()
    reason = last[-1] if last else "the trainer exited at once"
    return reason.removeprefix("error: ")


def tail_log(paths: RunPaths, *, lines: int = 20) -> str:
    """The last lines of the run's train.log ('' when missing)."""
    try:
        with open(paths.log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16_384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def data_source() -> tuple[bool, str]:
    """(available, where): MNIST via $AIGC_MNIST or Keras' cache; checked without importing Keras."""
    from aigc.engine.data import ENV_VAR, HOW_TO_PROVIDE

    explicit = os.environ.get(ENV_VAR)
    if explicit:
        path = Path(explicit).expanduser()
        return (True, f"${ENV_VAR} ({path.name})") if path.is_file() else (False, f"${ENV_VAR} points to a "
                                                                                 f"missing file. {HOW_TO_PROVIDE}")
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    if (keras_home / "datasets" / "mnist.npz").is_file():
        return True, "Keras' MNIST cache"
    return False, f"MNIST is not available. {HOW_TO_PROVIDE}"
