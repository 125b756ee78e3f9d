"""Background training jobs for the app: a run spec from the page, launch, stop, resume, list and delete runs.

No Streamlit and no TensorFlow here. The trainer is `python -m aigc train` in its own process
session; the app only reads its run directory. The trainer's lock is the only proof that a
job runs, so Start and Resume report the process that really holds it, or that they lost.
"""
from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from aigc import settings
from aigc.serve import retention
from aigc.serve.hosting import Policy, clamp_epochs
from aigc.cpus import trainer_threads
from aigc.text import counted
from aigc.engine.run_plan import architecture_of
from aigc.engine.spec import (PRESETS, SETTINGS, RunSpec, SpecError, add_spec_arguments, given_settings,
                              settings_to_args, spec_to_args)
from aigc.runs.files import read_json
from aigc.runs.layout import RunPaths, list_runs
from aigc.runs.lifecycle import (ACTIVE_STATES, RESUMABLE_STATES, delete_run, holds_lock, read_status,
                                 request_stop)
from aigc.runs.lock import EXIT_BUSY, LaunchGate, TrainingLock

TRAINER_NICE = 10  # the page must stay responsive while the trainer computes
START_WAIT_S = 20.0  # the trainer takes the lock before importing TensorFlow: this is python's start-up
BATCH_SIZES = SETTINGS["batch_size"].offered  # the form's choices: the table's, so the page and the CLI agree
MAX_PAGE_LR = 0.1
# The trainer's flags an operator may add through $AIGC_TRAIN_ARGS besides run-spec settings: this process's own.
TRAINER = [sys.executable, "-m", "aigc", "train"]  # the command a job runs (tests put a stand-in here)
RUNTIME_FLAGS = ("--max-steps", "--threads", "--nice")


@dataclass(frozen=True)
class Job:
    """The run the Train panel shows: the running job if any, else the newest run."""

    paths: RunPaths | None
    status: dict | None
    active: bool
    holder: dict | None


def current_job(*, root: Path | None = None) -> Job:
    """The job holding the lock, else the newest run (paths None when there is none); only reads."""
    root = root or settings.runs_root()
    holder = TrainingLock(root).holder()
    if holder is not None and holder.get("run_dir"):
        paths = RunPaths(Path(holder["run_dir"]))
        return Job(paths, read_status(paths, holder=holder), True, holder)
    for paths in list_runs(root):  # the newest run whose status.json reads: a junk folder is not a run to show
        status = read_status(paths, holder=holder)
        if status is not None:
            return Job(paths, status, holder is not None, holder)
    return Job(None, None, holder is not None, holder)


@dataclass(frozen=True)
class JobRequest:
    """What the Train panel asks for (validated here, never trusted)."""

    epochs: int = 1
    batch_size: int | None = None  # None: the preset's default
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


def request_spec(request: JobRequest, policy: Policy) -> RunSpec:
    """The run spec of a page request, within this server's limits; SpecError with a sentence when not."""
    epochs, problem = clamp_epochs(request.epochs, policy)
    if problem:
        raise SpecError(problem)
    if request.preset not in PRESETS:
        raise SpecError(f"unknown preset {request.preset!r}; choose one of {', '.join(PRESETS)}")
    if request.batch_size is not None and request.batch_size not in BATCH_SIZES:
        raise SpecError(f"batch size must be one of {', '.join(map(str, BATCH_SIZES))}")
    for name, rate in (("generator", request.lr_g), ("discriminator", request.lr_d)):
        if rate is not None and not (isinstance(rate, (int, float)) and 0 < rate <= MAX_PAGE_LR):
            raise SpecError(f"the {name} learning rate must be in (0, {MAX_PAGE_LR}], got {rate!r}")
    if request.init not in ("shipped", "scratch"):
        raise SpecError("start must be 'shipped' (train more) or 'scratch'")
    init_from = settings.shipped_generator(request.preset) if request.init == "shipped" else None
    if init_from is not None and not init_from.is_file():
        raise SpecError(f"no shipped {request.preset} weights to train more from; choose 'from scratch'")
    if request.data:
        check_data_file(request.data)
    given = dict(preset=request.preset, epochs=epochs, batch_size=request.batch_size, lr_g=request.lr_g,
                 lr_d=request.lr_d, init_from=str(init_from) if init_from else None, data=request.data)
    if init_from:
        given = architecture_of(str(init_from), given)  # train more: the shipped file's width, not today's default
    operator, _runtime = operator_flags()
    try:
        # The operator's settings are part of the spec the page shows and the run saves, never appended after it.
        return RunSpec.resolve(**dict(given, **operator))
    except SpecError as error:
        if not operator:
            raise
        raise SpecError(f"{error} (with ${settings.EXTRA_ARGS_ENV}: {' '.join(settings_to_args(operator))})") from None


def check_data_file(path: str) -> None:
    """The loader's own checks (keys, shapes, dtypes, label range) on an MNIST .npz; SpecError when it fails."""
    from aigc.engine.data import DataError, check_file

    if Path(path).suffix.lower() != ".npz":
        raise SpecError(f"the MNIST file must be an .npz, got {Path(path).name!r}")
    try:
        check_file(path)
    except DataError as error:
        raise SpecError(str(error)) from None


def trainer_command(spec: RunSpec, *, run_dir: Path) -> list[str]:
    """The full command line that creates and trains a run with exactly this spec (the operator's settings are in
    it already: see request_spec); only flags of this process follow it."""
    return [*TRAINER, "--run-dir", str(run_dir), *spec_to_args(spec), *_runtime_args()]


def operator_flags() -> tuple[dict, list[str]]:
    """$AIGC_TRAIN_ARGS read with the trainer's own flags: ({setting: value}, flags of the process such as
    --max-steps N). SpecError for a flag that is neither (it could point the job elsewhere)."""
    parser = _OperatorParser(add_help=False, allow_abbrev=False)
    add_spec_arguments(parser)
    parser.add_argument("--epochs", type=lambda text: SETTINGS["epochs"].parse(text), default=None)
    for flag in RUNTIME_FLAGS:
        parser.add_argument(flag, default=None)
    try:
        args = parser.parse_args(shlex.split(settings.env(settings.EXTRA_ARGS_ENV)))
    except ValueError as error:
        raise SpecError(f"${settings.EXTRA_ARGS_ENV}: {error}") from None
    given = dict(given_settings(args), epochs=args.epochs)
    process = {flag: getattr(args, flag[2:].replace("-", "_")) for flag in RUNTIME_FLAGS}
    runtime = [part for flag, value in process.items() if value is not None for part in (flag, value)]
    return {k: v for k, v in given.items() if v is not None}, runtime


class _OperatorParser(argparse.ArgumentParser):
    def error(self, message):  # a reason for the page, not an exit of the server
        raise SpecError(message)


def _runtime_args(*, resume: bool = False) -> list[str]:
    """--nice and --threads, then the operator's process flags; on resume also the operator's settings (the trainer
    records each one that differs from the run's spec as an override, in config.json and in train.log)."""
    threads = settings.env(settings.THREADS_ENV) or str(trainer_threads(reserve=1))
    operator, runtime = operator_flags()
    operator.pop("epochs", None)  # a resume trains to the run's recorded total
    return ["--nice", str(TRAINER_NICE), "--threads", threads, *(settings_to_args(operator) if resume else []), *runtime]


def start_job(request: JobRequest, *, policy: Policy, root: Path | None = None) -> StartResult:
    """Launch a new job unless the request is invalid, a job runs, the cooldown holds or the disk is full."""
    root = root or settings.runs_root()
    try:
        spec = request_spec(request, policy)
    except SpecError as error:
        return StartResult(False, str(error))
    try:
        with LaunchGate(root):  # from the check to the trainer's lock: nobody prunes or deletes in between
            problem = _busy(root, policy) or retention.make_room(root, policy)
            if problem:
                return StartResult(False, problem)
            try:
                paths = RunPaths(_new_run_dir(root))
            except OSError as error:
                return StartResult(False, f"cannot create a run folder: {error.strerror or error}")
            result = _launch(trainer_command(spec, run_dir=paths.root), paths, started="started")
            if not result.ok and not paths.status.exists():
                shutil.rmtree(paths.root, ignore_errors=True)  # the trainer refused at once: leave no empty run
            return result
    except TimeoutError as error:
        return StartResult(False, str(error))


def resume_job(paths: RunPaths, *, policy: Policy, root: Path | None = None) -> StartResult:
    """Continue a stopped or failed run from its latest checkpoint to its recorded total epochs."""
    root = root or settings.runs_root()
    status = read_status(paths, lock=TrainingLock(root)) or {}
    state = status.get("state")
    if state in ACTIVE_STATES:
        return StartResult(False, f"{paths.name} is still running")
    if state == "finished":
        total = status.get("total_epochs")
        planned = counted(total, "epoch") if isinstance(total, int) else "its epochs"  # the CLI's words
        return StartResult(False, f"{paths.name} already finished all {planned}; nothing to resume")
    if state not in RESUMABLE_STATES:
        return StartResult(False, f"{paths.name} cannot be resumed")
    try:
        command = [*TRAINER, "--run-dir", str(paths.root), "--resume", *_runtime_args(resume=True)]
    except SpecError as error:
        return StartResult(False, str(error))
    try:
        with LaunchGate(root):  # a Start racing this Resume must not prune the run before its trainer holds the lock
            if not paths.root.is_dir():
                return StartResult(False, f"{paths.name} no longer exists")
            problem = _busy(root, policy) or retention.make_room(root, policy, resuming=paths)
            if problem:
                return StartResult(False, problem)
            return _launch(command, paths, started="resumed")
    except TimeoutError as error:
        return StartResult(False, str(error))


def stop_job(paths: RunPaths) -> str:
    """Ask the trainer to stop after its current step; it checkpoints and ends as 'stopped'."""
    request_stop(paths)
    return f"stopping {paths.name}: it finishes the current step and saves a checkpoint"


def delete_job(paths: RunPaths, *, root: Path | None = None) -> str | None:
    """Delete a run that is not training (None), or say why not."""
    root = root or settings.runs_root()
    if not _inside(paths.root, root):
        return f"{paths.name} is not under the runs folder"
    try:
        with LaunchGate(root):  # never while a launch of this run is between its click and its trainer's lock
            return delete_run(paths, lock=TrainingLock(root))
    except TimeoutError as error:
        return str(error)
    except OSError as error:
        return f"could not delete {paths.name}: {error.strerror or error}"


def _inside(folder: Path, root: Path) -> bool:
    try:
        return folder.resolve().is_relative_to(root.resolve()) and folder.resolve() != root.resolve()
    except OSError:
        return False


def _busy(root: Path, policy: Policy) -> str | None:
    holder = TrainingLock(root).holder()
    if holder is not None:
        name = Path(holder.get("run_dir") or "?").name
        return f"a training job is already running ({name}); one job at a time"
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
    raise OSError(f"could not create a run folder under {root.name}")


def _launch(command: list[str], paths: RunPaths, *, started: str) -> StartResult:
    """Popen the trainer in its own session (output to train.log); report who really holds the lock."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")  # `python -m aigc` quiets TensorFlow's start-up itself
    env.pop("TF_CONFIG", None)  # a page's job trains on this machine, never as a worker of the server's cluster
    with open(paths.log, "ab") as log:
        process = subprocess.Popen(command, cwd=settings.ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    # Reap the child when it exits so it never lingers as a zombie (no Streamlit call here).
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    lock = TrainingLock(settings.runs_root())  # the trainer's own runs root: the one it locks
    deadline = time.time() + START_WAIT_S
    while time.time() < deadline:
        holder = lock.holder()
        if holder and holder.get("pid") == process.pid and holds_lock(holder, paths):
            return StartResult(True, f"{started} {paths.name} (pid {process.pid})", paths)
        code = process.poll()
        if code is not None:
            return StartResult(False, _launch_failure(paths, code, holder), paths)
        time.sleep(0.05)
    return StartResult(True, f"{started} {paths.name} (pid {process.pid}); the trainer is starting", paths)


def _launch_failure(paths: RunPaths, code: int, holder: dict | None) -> str:
    if code == EXIT_BUSY:
        name = Path((holder or {}).get("run_dir") or "?").name
        return f"another job started first ({name}); one job at a time"
    errors = [line for line in tail_log(paths, lines=40).splitlines() if line.startswith("error: ")]
    return errors[-1].removeprefix("error: ") if errors else "the trainer exited at once"


def tail_log(paths: RunPaths, *, lines: int = 20) -> str:
    """The last lines of the run's train.log ('' when missing)."""
    try:
        with open(paths.log, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 16_384))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def log_for_download(paths: RunPaths) -> bytes:
    """The whole train.log with the server's folders made relative (local mode's download)."""
    try:
        text = paths.log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return b""
    for folder, name in ((paths.root, "."), (settings.runs_root(), "runs"), (settings.ROOT, "."),
                         (Path.home(), "~")):
        text = re.sub(re.escape(str(folder)) + r"/?", name + "/" if name != "." else "", text)
    return text.encode()


def run_rows(*, root: Path | None = None) -> list[dict]:
    """One row per run for the runs list: name, preset, epochs, state, last quality, size on disk."""
    root = root or settings.runs_root()
    holder = TrainingLock(root).holder()
    rows = []
    for paths in list_runs(root):
        status = read_status(paths, holder=holder) or {}
        last = status.get("last_epoch") or {}
        rows.append({"run": _run_name(paths, root), "preset": status.get("preset") or "?",
                     "epochs": f"{status.get('epoch') or 0}/{status.get('total_epochs') or '?'}",
                     "state": status.get("state") or "?", "FDD": last.get("fdd"),
                     "class accuracy": last.get("class_accuracy"), "eval_n": last.get("eval_n"),
                     "MB": round(paths.size_bytes() / 2**20, 1),
                     "running": holds_lock(holder, paths)})
    return rows


def shown_row(row: dict) -> dict:
    """A run_rows row as the runs list shows it: a dash where nothing was measured, FDD with its sample count."""
    shown = {key: ("-" if value in (None, "?") else value) for key, value in row.items()
             if key not in ("running", "eval_n")}
    for key in ("FDD", "class accuracy"):
        if isinstance(row.get(key), (int, float)):
            shown[key] = f"{row[key]:.4g}"
    if isinstance(row.get("FDD"), (int, float)) and isinstance(row.get("eval_n"), int):
        shown["FDD"] += f" ({row['eval_n']:,} samples)"
    return shown


def _run_name(paths: RunPaths, root: Path) -> str:
    try:
        return str(paths.root.relative_to(root))
    except ValueError:
        return paths.name


def run_folder(name: str, *, root: Path | None = None) -> Path:
    """The folder of a run named as in run_rows (a path relative to the runs root)."""
    return (root or settings.runs_root()) / name


def data_source() -> tuple[bool, str]:
    """(available, where): MNIST via $AIGC_MNIST or Keras' cache; checked without importing Keras.

    The reason names no command-line flag and no folder: the page says what to do there (a visitor cannot type
    --data, and a folder would be cut from a visitor's message)."""
    explicit = settings.mnist_env_path()
    if explicit is not None:
        if explicit.is_file():
            return True, f"${settings.MNIST_ENV} ({explicit.name})"
        return False, (f"MNIST is not available: ${settings.MNIST_ENV} names a file that does not exist "
                       f"({explicit.name}).")
    if settings.keras_mnist_cache().is_file():
        return True, "Keras' MNIST cache"
    return False, f"MNIST is not available: ${settings.MNIST_ENV} is not set and Keras' MNIST cache is empty."
