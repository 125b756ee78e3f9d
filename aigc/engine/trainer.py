"""The trainer: epoch loop, resume, cooperative stop, writing the run directory.

Called by `python -m aigc train`, which holds the runs root's training lock and has saved the
run's plan (config.json, the epoch target included) before importing this. The trainer reads its
settings from the plan only and never writes config.json.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path


from aigc.engine.cluster import Role
from aigc.engine.distributed import chiefs_value, cluster_failure, join_or_exit, make_agreement
from aigc.engine.epoch_loop import EpochLoop, Steps
from aigc.text import counted
from aigc.engine.run_plan import Plan
from aigc.engine.run_writer import RunWriter, StopFlag
from aigc.runs.files import overwrite_json_in_place, read_json
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import remove_leftovers
from aigc.runs.lock import LOCK_NAME, TrainingLock

PRIVATE_PREFIX = "aigc-"  # a non-chief worker's private run folder in the temp dir: aigc-worker1-XXXX


class TrainError(Exception):
    """A reason the run cannot train, for people (one line, no traceback)."""


def run(plan: Plan, role: Role = Role()) -> str:
    """Train per plan, writing the run directory; returns the final state (finished|stopped|failed).

    The process's Keras precision policy is put back afterwards, so a run inside another program (a notebook,
    the tests) does not leave it training or loading models in mixed precision.
    """
    previous = sys.modules["keras"].mixed_precision.global_policy().name if "keras" in sys.modules else None
    try:
        return _run(plan, role)
    finally:
        if "keras" in sys.modules:
            sys.modules["keras"].mixed_precision.set_global_policy(previous or "float32")


def _run(plan: Plan, role: Role) -> str:
    """The run as this process's role trains it.

    A non-chief worker of a cluster trains the same steps but writes into a private temporary folder
    (removed at the end) and restores from the chief's checkpoints: the chief is the run's one writer.
    """
    if role.chief:
        return _run_writing(plan, role)
    remove_dead_private_folders()
    private = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{role.cluster.task_type}{role.cluster.task_index}-"))
    alive = TrainingLock(private)  # held for this worker's life: a folder whose lock is free belongs to no one
    alive.acquire(private)
    try:
        return _run_writing(dataclasses.replace(plan, paths=RunPaths(private)),
                            dataclasses.replace(role, restore_from=str(plan.paths.ckpt)))
    finally:
        alive.release()
        shutil.rmtree(private, ignore_errors=True)


def remove_dead_private_folders(folder: Path | None = None) -> list[str]:
    """Remove the private folders of workers that died without cleaning up (kill -9); returns their names."""
    removed = []
    for candidate in Path(folder or tempfile.gettempdir()).glob(PRIVATE_PREFIX + "*"):
        if candidate.is_dir() and (candidate / LOCK_NAME).exists() and not TrainingLock(candidate).is_held():
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate.name)
    return removed


def _run_writing(plan: Plan, role: Role) -> str:
    paths = plan.paths
    previous = read_json(paths.status) or {}
    writer = RunWriter(paths, dict(previous, pid=os.getpid(), started_at=time.time(), error=None, warning=None,
                                   img_per_s=None, eta_s=None, finished_at=None), state=previous.get("state"))
    try:
        paths.stop.unlink(missing_ok=True)
        removed = remove_leftovers(paths)
        writer.update(state="created", total_epochs=plan.spec.epochs, workers=role.workers)
        if removed:
            writer.log(f"removed {counted(len(removed), 'leftover temporary file')} of an interrupted run")
        stop = StopFlag(paths.stop)  # listening from here on, before TensorFlow loads (and since start-up: aigc.signals)
        if stop.reason():
            writer.log(f"stop requested ({stop.reason()}) before training began: nothing trained, nothing lost")
            writer.update(state="stopped", stop_reason=stop.reason(), eta_s=None, finished_at=time.time())
            return "stopped"
        return _train(plan, writer, role, stop)
    except Exception as error:  # noqa: BLE001  (any crash must become state 'failed')
        lost = cluster_failure(error, role)
        _record_failure(paths, writer, lost or _one_line(error), with_traceback=not lost and not isinstance(error, TrainError))
        return "failed"


def _one_line(error: BaseException, limit: int = 400) -> str:
    """The reason in one line: a TrainError's or DataError's message, else 'Type: first line'."""
    text = str(error).strip().splitlines()
    if type(error).__name__ in ("TrainError", "DataError", "CheckpointError"):
        message = text[0] if text else type(error).__name__
    else:
        message = f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
    return message if len(message) <= limit else message[:limit - 3] + "..."


def _record_failure(paths: RunPaths, writer: RunWriter, message: str, *, with_traceback: bool) -> None:
    """Log the traceback and set state 'failed'; with the disk full or the run dir unwritable, say why on stderr."""
    note = ""
    try:
        if with_traceback:
            with open(paths.log, "a", encoding="utf-8") as handle:
                traceback.print_exc(file=handle)
        writer.log(f"training failed: {message}")
    except Exception:  # noqa: BLE001  (train.log is best effort)
        pass
    try:
        writer.update(state="failed", error=message, eta_s=None)
    except Exception:  # noqa: BLE001  (a full disk has no room for the temporary file: overwrite in place)
        try:
            overwrite_json_in_place(paths.status, writer.status)
        except Exception as error:  # noqa: BLE001  (the failure prevents writing status.json at all)
            note = f" (status.json could not be updated: {_one_line(error)})"
    print(f"error: training failed: {message}{note}", file=sys.stderr, flush=True)


def _configure_runtime(plan: Plan) -> str:
    """Priority, threads, precision policy and seeds of this process; returns the precision used."""
    invocation, spec = plan.invocation, plan.spec
    if invocation.nice:
        os.nice(invocation.nice)
    import keras

    from aigc.cpus import configure_tensorflow_threads
    from aigc.engine.gan import pick_precision

    configure_tensorflow_threads(invocation.threads)
    precision = pick_precision(spec.precision)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(spec.seed)
    return precision


def _restore_or_init(plan: Plan, gan, checkpoint, manager, writer: RunWriter, role: Role) -> None:
    """Restore the newest readable checkpoint, else start from the spec's init_from (never silently from random)."""
    from aigc.engine.checkpoints import CheckpointError, restore_newest

    spec, paths = plan.spec, plan.paths
    # Every worker restores the chief's newest checkpoint, so the cluster resumes from one state.
    source, known = (role.restore_from, ()) if role.restore_from else (paths.ckpt, manager.checkpoints)
    try:
        restored, warning = restore_newest(checkpoint, source, known=known, log=writer.log)
    except CheckpointError:
        if not spec.init_from:
            raise  # no weights to fall back on: say which checkpoints are damaged and what to do
        restored, warning = None, f"every checkpoint was damaged; started again from {os.path.basename(spec.init_from)}"
    if warning:
        writer.status["warning"] = warning
        writer.log(f"warning: {warning}")
    if restored:
        writer.log(f"resumed from {os.path.basename(restored)} at epoch {int(checkpoint.epoch)}, "
                   f"step {int(checkpoint.step)}")
    elif spec.init_from:
        if not os.path.isfile(spec.init_from):
            raise TrainError(f"this run starts from {os.path.basename(spec.init_from)}, which is gone; "
                             "restore that file or start a new run")
        _load_init(gan, spec.init_from)
        writer.log(f"initialised from {os.path.basename(spec.init_from)}")
    if plan.restart_epoch:
        checkpoint.step_in_epoch.assign(0)


def _train(plan: Plan, writer: RunWriter, role: Role, stop: StopFlag) -> str:
    import tensorflow as tf

    from aigc.engine.gan import GAN

    spec, paths = plan.spec, plan.paths
    precision = _configure_runtime(plan)
    strategy = _strategy(plan, writer, role, stop)
    x_train, y_train = _training_set(spec)
    gan = GAN(spec, strategy=strategy)
    counters = {name: tf.Variable(0, dtype=tf.int64, trainable=False) for name in ("epoch", "step", "step_in_epoch")}
    gan.attach_data(x_train, y_train)
    checkpoint = gan.checkpoint(**counters)
    manager = tf.train.CheckpointManager(checkpoint, str(paths.ckpt), max_to_keep=2)
    _restore_or_init(plan, gan, checkpoint, manager, writer, role)
    steps = Steps(gan, len(x_train), base_epochs=plan.base_epochs)
    if role.cluster:
        # Every worker trains to the chief's target: the chief may have saved its plan before another worker read it.
        plan = dataclasses.replace(plan, spec=spec.replace(epochs=chiefs_value(strategy, spec.epochs, role.chief)))
    done_epochs = int(counters["epoch"])
    # A run killed after its last step's checkpoint has nothing left to train: it goes from 'created' to 'finished'
    # without claiming 'running' in between.
    working = {"state": "running"} if done_epochs < plan.spec.epochs else {}
    writer.update(**working, total_epochs=plan.spec.epochs, steps_per_epoch=steps.steps_per_epoch,
                  precision=precision, preset=spec.preset, batch_size=spec.batch_size,
                  replicas=strategy.num_replicas_in_sync, workers=role.workers, epoch=done_epochs,
                  current_epoch=done_epochs + 1, step=int(counters["step"]), step_in_epoch=int(counters["step_in_epoch"]))
    threading = tf.config.threading
    pools = threading.get_intra_op_parallelism_threads(), threading.get_inter_op_parallelism_threads()
    writer.log(f"training {spec.preset} to epoch {plan.spec.epochs} ({counted(steps.steps_per_epoch, 'step')} per "
               f"epoch, batch {spec.batch_size}, {precision}, {counted(strategy.num_replicas_in_sync, 'replica')} on "
               f"{counted(role.workers, 'worker')}, threads {pools[0] or 'default'} intra-op + "
               f"{pools[1] or 'default'} inter-op)")
    if spec.lr_half_life:
        half_life = f"{spec.lr_half_life:g} epoch" + ("" if spec.lr_half_life == 1 else "s")
        writer.log(f"learning rates halve every {half_life}" + (
            f", counted from the {counted(plan.base_epochs, 'epoch')} behind the starting weights" if plan.base_epochs else ""))
    loop = EpochLoop(plan, steps, writer=writer, manager=manager, counters=counters, stop=stop, role=role)
    if role.cluster:
        loop.agree = make_agreement(strategy)
    return loop.run()


def _strategy(plan: Plan, writer: RunWriter, role: Role, stop: StopFlag):
    """This process's distribution strategy; a cluster's comes before any other TensorFlow op."""
    from aigc.engine.gan import pick_strategy

    if not role.cluster:
        return pick_strategy()
    writer.log(f"{role.cluster.name} of {role.workers} workers: waiting for the others to join")
    strategy = join_or_exit(lambda: pick_strategy(role.cluster, collective_timeout=role.collective_timeout), role,
                            note=lambda why: writer.update(error=why), log_path=plan.paths.log)
    stop.install()
    return strategy


def _training_set(spec):
    """(images uint8, labels) the spec trains on; TrainError when they hold less than one batch."""
    from aigc.engine.data import load_mnist

    x_train, y_train, _x_test, _y_test = load_mnist(spec.data)
    if spec.train_limit:
        x_train, y_train = x_train[:spec.train_limit], y_train[:spec.train_limit]
    if len(x_train) < spec.batch_size:
        raise TrainError(f"the batch size {spec.batch_size} exceeds the {len(x_train)} training images")
    return x_train, y_train


def _load_init(gan, path: str) -> None:
    from aigc.engine.checkpoints import load_discriminator, load_generator, sibling_discriminator

    generator, _config, _card = load_generator(path)
    discriminator_path = sibling_discriminator(path)
    discriminator = load_discriminator(discriminator_path)[0] if discriminator_path else None
    gan.load_pretrained(generator, discriminator)



def main_guarded(plan: Plan, role: Role = Role()) -> int:
    """Entry for the CLI: exit code 0 for finished/stopped, 1 for failed."""
    state = run(plan, role)
    sys.stdout.flush()
    return 1 if state == "failed" else 0
