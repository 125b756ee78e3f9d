"""The trainer: epoch loop, resume, cooperative stop, writing the run directory.

Called by `python -m aigc train`, which holds the runs root's training lock and has saved the
run's spec (config.json) before importing this.
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

import numpy as np

from aigc.engine.cluster import Role
from aigc.engine.distributed import cluster_failure, join_or_exit, make_agreement
from aigc.engine.run_plan import Plan
from aigc.engine.run_writer import RunWriter, StopFlag
from aigc.runs.files import atomic_write_bytes, atomic_write_json, overwrite_json_in_place, png_bytes, read_json
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import remove_leftovers

SAMPLE_SEED = 1234
SAMPLE_COLUMNS = 10


class TrainError(Exception):
    """A reason the run cannot train, for people (one line, no traceback)."""


def run(plan: Plan, role: Role = Role()) -> str:
    """Train per plan, writing the run directory; returns the final state (finished|stopped|failed).

    A non-chief worker of a cluster trains the same steps but writes into a private temporary folder
    (removed at the end) and restores from the chief's checkpoints: the chief is the run's one writer.
    """
    if role.chief:
        return _run_writing(plan, role)
    private = Path(tempfile.mkdtemp(prefix=f"aigc-{role.cluster.task_type}{role.cluster.task_index}-"))
    try:
        return _run_writing(dataclasses.replace(plan, paths=RunPaths(private)),
                            dataclasses.replace(role, restore_from=str(plan.paths.ckpt)))
    finally:
        shutil.rmtree(private, ignore_errors=True)


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
            writer.log(f"removed {len(removed)} leftover temporary file(s) of an interrupted run")
        return _train(plan, writer, role)
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
    import tensorflow as tf

    from aigc.cpus import usable_cpus
    from aigc.engine.gan import pick_precision

    try:
        tf.config.threading.set_intra_op_parallelism_threads(invocation.threads or usable_cpus())
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # TensorFlow already ran in this process (a notebook, the tests): its pools stay as they are
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


def _epoch_target(plan: Plan, done_epochs: int) -> int:
    """Train more: N epochs counted from the restored checkpoint (status.json may lag or be damaged)."""
    invocation = plan.invocation
    if plan.created or invocation.resume or not invocation.add_epochs:
        return plan.spec.epochs
    target = done_epochs + invocation.add_epochs
    if target != plan.spec.epochs:
        plan.record["spec"] = dict(plan.record["spec"], epochs=target)
        atomic_write_json(plan.paths.config, plan.record)
    return target


def _train(plan: Plan, writer: RunWriter, role: Role) -> str:
    import tensorflow as tf

    from aigc.engine.data import load_mnist, make_dataset
    from aigc.engine.gan import GAN, pick_strategy

    spec, paths = plan.spec, plan.paths
    stop = StopFlag(paths.stop)
    precision = _configure_runtime(plan)
    if role.cluster:  # the strategy comes before any other TensorFlow op
        writer.log(f"{role.cluster.name} of {role.workers} workers: waiting for the others to join")
        strategy = join_or_exit(lambda: pick_strategy(role.cluster, collective_timeout=role.collective_timeout), role,
                                note=lambda why: writer.update(error=why), log_path=paths.log)
        stop.install()
    else:
        strategy = pick_strategy()
    model_config = spec.model
    x_train, y_train, _x_test, _y_test = load_mnist(spec.data)
    if spec.train_limit:
        x_train, y_train = x_train[:spec.train_limit], y_train[:spec.train_limit]
    if len(x_train) < spec.batch_size:
        raise TrainError(f"the batch size {spec.batch_size} exceeds the {len(x_train)} training images")
    gan = GAN(model_config, lr_g=spec.lr_g, lr_d=spec.lr_d, beta_1=spec.beta_1, ema_decay=spec.ema_decay,
              loss=spec.loss, label_smoothing=spec.label_smoothing, global_batch=spec.batch_size, strategy=strategy,
              seed=spec.seed, jit=spec.jit)
    counters = {name: tf.Variable(0, dtype=tf.int64, trainable=False) for name in ("epoch", "step", "step_in_epoch")}
    checkpoint = gan.checkpoint(**counters)
    manager = tf.train.CheckpointManager(checkpoint, str(paths.ckpt), max_to_keep=2)
    _restore_or_init(plan, gan, checkpoint, manager, writer, role)
    steps_per_epoch = len(x_train) // spec.batch_size
    done_epochs = int(counters["epoch"])
    total_epochs = _epoch_target(plan, done_epochs)
    plan = dataclasses.replace(plan, spec=plan.spec.replace(epochs=total_epochs))
    writer.update(state="running", total_epochs=total_epochs, steps_per_epoch=steps_per_epoch, precision=precision,
                  preset=model_config.preset, batch_size=spec.batch_size, replicas=strategy.num_replicas_in_sync,
                  workers=role.workers,
                  epoch=done_epochs, current_epoch=done_epochs + 1, step=int(counters["step"]),
                  step_in_epoch=int(counters["step_in_epoch"]))
    writer.log(f"training {model_config.preset} to epoch {total_epochs} ({steps_per_epoch} steps/epoch, "
               f"batch {spec.batch_size}, {precision}, {strategy.num_replicas_in_sync} replica(s) on {role.workers} worker(s))")
    loop = _Loop(plan, gan, writer, manager, counters, stop, steps_per_epoch, model_config, role)
    if role.cluster:
        loop.agree = make_agreement(strategy)
    return loop.run(lambda epoch, skip: make_dataset(
        x_train, y_train, batch_size=spec.batch_size, epoch_seed=spec.seed * 100_003 + epoch, skip_batches=skip),
        strategy)


def _load_init(gan, path: str) -> None:
    from aigc.engine.checkpoints import load_discriminator, load_generator, sibling_discriminator

    generator, _config, _card = load_generator(path)
    discriminator_path = sibling_discriminator(path)
    discriminator = load_discriminator(discriminator_path)[0] if discriminator_path else None
    gan.load_pretrained(generator, discriminator)


class _Loop:
    """The epoch loop with its bookkeeping: logging, checkpoints, samples, evaluation."""

    def __init__(self, plan, gan, writer, manager, counters, stop, steps_per_epoch, model_config, role):
        self.__dict__.update(spec=plan.spec, invocation=plan.invocation, gan=gan, paths=plan.paths, writer=writer,
                             manager=manager, counters=counters, stop=stop, steps_per_epoch=steps_per_epoch,
                             total_epochs=plan.spec.epochs, model_config=model_config, chief=role.chief)
        self.agree = None  # set for a cluster: decisions that must be the same on every worker
        self.steps_this_run = 0
        self.last_checkpoint = time.time()
        self.step_times: list[float] = []

    def run(self, dataset_for, strategy) -> str:
        while int(self.counters["epoch"]) < self.total_epochs:
            epoch = int(self.counters["epoch"]) + 1
            skip = int(self.counters["step_in_epoch"])
            dataset = strategy.experimental_distribute_dataset(dataset_for(epoch, skip))
            reason = self._epoch(epoch, dataset)
            if reason:
                return self._finish("stopped", f"stopped ({reason})")
        return self._finish("finished", "finished")

    def _epoch(self, epoch: int, dataset) -> str | None:
        bar = _progress_bar(self.steps_per_epoch, int(self.counters["step_in_epoch"]))
        window, epoch_sums, epoch_count = [], {}, 0
        epoch_start = window_start = time.time()
        for real_images, labels in dataset:
            values = {k: float(v) for k, v in self.gan.train_step(real_images, labels).items()}
            self._count_step()
            window.append(values)
            for key, value in values.items():
                epoch_sums[key] = epoch_sums.get(key, 0.0) + value
            epoch_count += 1
            if bar:
                bar.update(int(self.counters["step_in_epoch"]), [(k, v) for k, v in values.items() if "loss" in k])
            if len(window) >= self.spec.log_every:
                self._log_window(epoch, window, time.time() - window_start)
                window, window_start = [], time.time()
            reason = self._should_stop()
            checkpoint_due = time.time() - self.last_checkpoint >= self.spec.checkpoint_seconds
            if self.agree:  # the chief's clock decides checkpoints; any worker's signal stops everyone
                reason, checkpoint_due = self.agree(reason, checkpoint_due and self.chief)
            if reason:
                self.writer.update(state="stopping", stop_reason=reason, eta_s=None)
                self._save_checkpoint()
                self._save_generator(epoch - 1)
                return reason
            if checkpoint_due:
                self._save_checkpoint()
        self._end_epoch(epoch, epoch_sums, epoch_count, time.time() - epoch_start)
        return None

    def _count_step(self) -> None:
        now = time.time()
        self.step_times = (self.step_times + [now])[-50:]
        self.counters["step"].assign_add(1)
        self.counters["step_in_epoch"].assign_add(1)
        self.steps_this_run += 1

    def _should_stop(self) -> str | None:
        if self.invocation.max_steps and self.steps_this_run >= self.invocation.max_steps:
            return f"--max-steps {self.invocation.max_steps} reached"
        return self.stop.reason()

    def _seconds_per_step(self) -> float | None:
        if len(self.step_times) < 2:
            return None
        return (self.step_times[-1] - self.step_times[0]) / (len(self.step_times) - 1)

    def _progress_fields(self, epoch: int) -> dict:
        per_step = self._seconds_per_step()
        done = (epoch - 1) * self.steps_per_epoch + int(self.counters["step_in_epoch"])
        remaining = self.total_epochs * self.steps_per_epoch - done
        return dict(epoch=epoch - 1, current_epoch=epoch, step=int(self.counters["step"]),
                    step_in_epoch=int(self.counters["step_in_epoch"]),
                    eta_s=round(remaining * per_step, 1) if per_step else None)

    def _log_window(self, epoch: int, window: list[dict], seconds: float) -> None:
        record = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        record.update(kind="step", epoch=epoch, step=int(self.counters["step"]), time=time.time(),
                      img_per_s=round(len(window) * self.spec.batch_size / max(seconds, 1e-9), 1))
        self.writer.metrics(record)
        self.writer.update(state="running", img_per_s=record["img_per_s"], **self._progress_fields(epoch))

    def _end_epoch(self, epoch: int, sums: dict, count: int, seconds: float) -> None:
        self.counters["epoch"].assign(epoch)
        self.counters["step_in_epoch"].assign(0)
        record = {k: v / max(count, 1) for k, v in sums.items()}
        record.update(kind="epoch", epoch=epoch, step=int(self.counters["step"]), time=time.time(),
                      epoch_time_s=round(seconds, 2), img_per_s=round(count * self.spec.batch_size / max(seconds, 1e-9), 1))
        self._save_samples(epoch)
        self._save_generator(epoch)
        keep_every = self.spec.keep_every
        if keep_every and epoch % keep_every == 0 and self.chief:
            snapshot = self.paths.root / "generators" / f"epoch_{epoch:04d}.keras"
            snapshot.parent.mkdir(exist_ok=True)
            atomic_write_bytes(snapshot, self.paths.generator.read_bytes())
        self._save_checkpoint()
        record.update(self._evaluate())
        self.writer.metrics(record)
        self.writer.update(state="running", **self._progress_fields(epoch + 1), last_epoch=record)
        self.writer.log(f"epoch {epoch}/{self.total_epochs}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float)))

    def _evaluate(self) -> dict:
        from aigc.quality import metrics

        if not self.chief or not self.spec.eval_samples or not metrics.evaluator_available():
            return {}
        start = time.time()
        try:
            result = metrics.evaluate_generator(self.gan.serving_generator, self.model_config, n=self.spec.eval_samples)
        except Exception as error:  # noqa: BLE001  (a broken evaluator must not end the training)
            self.writer.log(f"evaluation skipped: {type(error).__name__}: {error}")
            return {}
        return dict(metrics.summary(result), eval_time_s=round(time.time() - start, 2))

    def _save_checkpoint(self) -> None:
        self.manager.save(checkpoint_number=int(self.counters["step"]))
        self.last_checkpoint = time.time()

    def _save_samples(self, epoch: int) -> None:
        from aigc.engine.sampling import grid, run_generator

        if not self.chief:
            return  # only the run directory's writer draws samples

        per_row = SAMPLE_COLUMNS
        rng = np.random.default_rng(SAMPLE_SEED)
        z = rng.standard_normal((10 * per_row, self.model_config.latent_dim)).astype(np.float32)
        labels = np.repeat(np.arange(10, dtype=np.int32), per_row)
        images = run_generator(self.gan.serving_generator, z, labels if self.model_config.conditional else None)
        atomic_write_bytes(self.paths.sample_path(epoch), png_bytes(grid(images, per_row)))

    def _save_generator(self, epoch: int) -> None:
        from aigc.engine.checkpoints import export_for_serving, run_card, save_model_file

        if not self.chief:
            return

        # The card travels in the file: epochs here, lineage (init_from chain), data, time, hardware, recipe.
        card = run_card(self.spec, epoch=epoch, step=int(self.counters["step"]), paths=self.paths)
        serving = export_for_serving(self.gan.serving_generator, self.model_config)
        save_model_file(serving, self.paths.generator, config=self.model_config, card=card)
        # The discriminator rides along so that "train more" from these weights keeps its critic.
        critic = export_for_serving(self.gan.discriminator, self.model_config, discriminator=True)
        save_model_file(critic, self.paths.discriminator, config=self.model_config, card=card)

    def _finish(self, state: str, message: str) -> str:
        self.writer.update(state=state, eta_s=None, img_per_s=None, epoch=int(self.counters["epoch"]),
                           current_epoch=int(self.counters["epoch"]), step=int(self.counters["step"]),
                           step_in_epoch=int(self.counters["step_in_epoch"]), finished_at=time.time())
        self.writer.log(message)
        self.paths.stop.unlink(missing_ok=True)
        return state


def _progress_bar(steps_per_epoch: int, start: int):
    """A keras Progbar when stdout is a terminal, else None (the UI reads status.json instead)."""
    if not sys.stdout.isatty():
        return None
    import keras

    bar = keras.utils.Progbar(steps_per_epoch, stateful_metrics=["d_loss", "g_loss"])
    if start:
        bar.update(start)
    return bar


def main_guarded(plan: Plan, role: Role = Role()) -> int:
    """Entry for the CLI: exit code 0 for finished/stopped, 1 for failed."""
    state = run(plan, role)
    sys.stdout.flush()
    return 1 if state == "failed" else 0
