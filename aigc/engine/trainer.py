"""The trainer: epoch loop, resume, cooperative stop, and the run-directory writer.

Called by `python -m aigc train`, which takes the global training lock before importing this.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from aigc.engine.spec import ModelConfig, TrainConfig, preset_defaults
from aigc.engine.run_writer import RunWriter, StopFlag
from aigc.runs.files import atomic_write_bytes, atomic_write_json, overwrite_json_in_place, read_json
from aigc.runs.layout import RunPaths

SAMPLE_SEED = 1234
SAMPLE_COLUMNS = 10


def run(cfg: TrainConfig) -> str:
    """Train per cfg, writing the run directory; returns the final state (finished|stopped|failed)."""
    cfg = dataclasses.replace(cfg)  # hyperparameters are resolved once the run's preset is known
    paths = RunPaths(Path(cfg.run_dir))
    previous = read_json(paths.status) or {}
    writer = RunWriter(paths, dict(previous, state="created", pid=os.getpid(), started_at=time.time(), error=None,
                                   warning=None))
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.stop.unlink(missing_ok=True)
        _remove_stale_temporaries(paths.root)
        writer.update()
        return _train(cfg, paths, writer, previous)
    except Exception as error:  # noqa: BLE001  (any crash must become state 'failed')
        _record_failure(paths, writer, _one_line(error))
        return "failed"


def _one_line(error: BaseException, limit: int = 400) -> str:
    """'Type: first line of the message', short enough for status.json and a terminal."""
    text = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
    return message if len(message) <= limit else message[:limit - 3] + "..."


def _record_failure(paths: RunPaths, writer: RunWriter, message: str) -> None:
    """Log the traceback and set state 'failed'; with the disk full or the run dir unwritable, say why on stderr."""
    note = ""
    try:
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


def _remove_stale_temporaries(root: Path) -> None:
    """Drop half-written temporary files left by a killed trainer (this process holds the run lock)."""
    for stale in list(root.glob(".*.tmp")) + list(root.glob(".*.tmp.keras")):
        if not stale.name.startswith(".STOP."):
            stale.unlink(missing_ok=True)


def _configure_runtime(cfg: TrainConfig) -> str:
    if cfg.nice:
        os.nice(cfg.nice)
    import keras
    import tensorflow as tf

    from aigc.engine.gan import pick_precision

    if cfg.threads:
        tf.config.threading.set_intra_op_parallelism_threads(cfg.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    precision = pick_precision(cfg.precision)
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(cfg.seed)
    return precision


def _model_config(cfg: TrainConfig, paths: RunPaths) -> tuple[ModelConfig, dict]:
    """The run's model config: from config.json on resume, else from --init-from or --preset."""
    saved = read_json(paths.config)
    if saved:
        model_config = ModelConfig.from_dict(saved["model_config"])
        if cfg.preset != model_config.preset and not cfg.extra.get("preset_defaulted", False):
            raise ValueError(f"{paths.root} holds a {model_config.preset!r} run; it cannot continue as {cfg.preset!r}")
        return model_config, saved
    if cfg.init_from:
        from aigc.engine.checkpoints import read_meta

        model_config, _card = read_meta(cfg.init_from)
    else:
        architecture = {k: cfg.extra[k] for k in ("discriminator", "spectral_norm") if cfg.extra.get(k) is not None}
        model_config = ModelConfig(preset=cfg.preset, **architecture)
    hyper = dataclasses.replace(cfg, preset=model_config.preset).resolved()
    saved = {"model_config": json.loads(model_config.to_json()), "created_at": time.time(),
             "init_from": cfg.init_from, "data": cfg.data or os.environ.get("AIGC_MNIST") or "keras",
             "hyperparameters": {key: getattr(hyper, key) for key in preset_defaults(model_config.preset)}}
    atomic_write_json(paths.config, saved)
    return model_config, saved


def _hyperparameters(cfg: TrainConfig, preset: str, run_config: dict) -> TrainConfig:
    """Unset hyperparameters: the run's recorded ones on resume, else the preset's defaults."""
    cfg = dataclasses.replace(cfg, preset=preset)
    recorded = run_config.get("hyperparameters") or {}
    for key, default in preset_defaults(preset).items():
        if getattr(cfg, key) is None:
            setattr(cfg, key, recorded.get(key, default))
    return cfg


def _train(cfg: TrainConfig, paths: RunPaths, writer: RunWriter, previous: dict) -> str:
    import tensorflow as tf

    from aigc.engine.checkpoints import restore_newest
    from aigc.engine.data import load_mnist, make_dataset
    from aigc.engine.gan import GAN, pick_strategy

    stop = StopFlag(paths.stop)
    precision = _configure_runtime(cfg)
    model_config, run_config = _model_config(cfg, paths)
    cfg = _hyperparameters(cfg, model_config.preset, run_config)
    x_train, y_train, _x_test, _y_test = load_mnist(cfg.data)
    if cfg.train_limit:
        x_train, y_train = x_train[:cfg.train_limit], y_train[:cfg.train_limit]
    strategy = pick_strategy()
    assert len(x_train) >= cfg.batch_size, f"batch size {cfg.batch_size} exceeds the {len(x_train)} training images"
    gan = GAN(model_config, lr_g=cfg.lr_g, lr_d=cfg.lr_d, beta_1=cfg.beta_1, ema_decay=cfg.ema_decay, loss=cfg.loss,
              label_smoothing=cfg.label_smoothing, global_batch=cfg.batch_size, strategy=strategy, seed=cfg.seed,
              jit=bool(cfg.extra.get("jit", False)))
    counters = {name: tf.Variable(0, dtype=tf.int64, trainable=False) for name in ("epoch", "step", "step_in_epoch")}
    checkpoint = gan.checkpoint(**counters)
    manager = tf.train.CheckpointManager(checkpoint, str(paths.ckpt), max_to_keep=2)
    restored, warning = restore_newest(checkpoint, paths.ckpt, known=manager.checkpoints, log=writer.log)
    if warning:
        writer.status["warning"] = warning
    if restored:
        writer.log(f"resumed from {restored} at epoch {int(counters['epoch'])}, step {int(counters['step'])}")
    elif cfg.init_from:
        _load_init(gan, cfg.init_from)
        writer.log(f"initialised from {cfg.init_from}")
    steps_per_epoch = len(x_train) // cfg.batch_size
    done_epochs = int(counters["epoch"])
    total_epochs = int(previous.get("total_epochs") or done_epochs) if cfg.resume else done_epochs + cfg.epochs
    if cfg.resume and total_epochs <= done_epochs:
        total_epochs = done_epochs + max(cfg.epochs, 1)
    writer.update(state="running", total_epochs=total_epochs, steps_per_epoch=steps_per_epoch, precision=precision,
                  preset=model_config.preset, batch_size=cfg.batch_size, replicas=strategy.num_replicas_in_sync,
                  epoch=done_epochs, step=int(counters["step"]), run_config=run_config)
    writer.log(f"training {model_config.preset} to epoch {total_epochs} ({steps_per_epoch} steps/epoch, "
               f"batch {cfg.batch_size}, {precision}, {strategy.num_replicas_in_sync} replica(s))")
    loop = _Loop(cfg, gan, paths, writer, manager, counters, stop, steps_per_epoch, total_epochs, model_config)
    return loop.run(lambda epoch, skip: make_dataset(
        x_train, y_train, batch_size=cfg.batch_size, epoch_seed=cfg.seed * 100_003 + epoch, skip_batches=skip),
        strategy)


def _load_init(gan, path: str) -> None:
    from aigc.engine.checkpoints import load_discriminator, load_generator, sibling_discriminator

    generator, _config, _card = load_generator(path)
    discriminator_path = sibling_discriminator(path)
    discriminator = load_discriminator(discriminator_path)[0] if discriminator_path else None
    gan.load_pretrained(generator, discriminator)


class _Loop:
    """The epoch loop with its bookkeeping: logging, checkpoints, samples, evaluation."""

    def __init__(self, cfg, gan, paths, writer, manager, counters, stop, steps_per_epoch, total_epochs, model_config):
        self.__dict__.update(cfg=cfg, gan=gan, paths=paths, writer=writer, manager=manager, counters=counters,
                             stop=stop, steps_per_epoch=steps_per_epoch, total_epochs=total_epochs,
                             model_config=model_config)
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
            if len(window) >= self.cfg.log_every:
                self._log_window(epoch, window, time.time() - window_start)
                window, window_start = [], time.time()
            reason = self._should_stop()
            if reason:
                self._save_checkpoint()
                self._save_generator(epoch - 1)
                return reason
            if time.time() - self.last_checkpoint >= self.cfg.checkpoint_seconds:
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
        if self.cfg.max_steps and self.steps_this_run >= self.cfg.max_steps:
            return f"--max-steps {self.cfg.max_steps} reached"
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
                      img_per_s=round(len(window) * self.cfg.batch_size / max(seconds, 1e-9), 1))
        self.writer.metrics(record)
        self.writer.update(state="running", img_per_s=record["img_per_s"], **self._progress_fields(epoch))

    def _end_epoch(self, epoch: int, sums: dict, count: int, seconds: float) -> None:
        self.counters["epoch"].assign(epoch)
        self.counters["step_in_epoch"].assign(0)
        record = {k: v / max(count, 1) for k, v in sums.items()}
        record.update(kind="epoch", epoch=epoch, step=int(self.counters["step"]), time=time.time(),
                      epoch_time_s=round(seconds, 2), img_per_s=round(count * self.cfg.batch_size / max(seconds, 1e-9), 1))
        self._save_samples(epoch)
        self._save_generator(epoch)
        keep_every = int(self.cfg.extra.get("keep_every") or 0)
        if keep_every and epoch % keep_every == 0:
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

        if not self.cfg.eval_samples or not metrics.evaluator_available():
            return {}
        start = time.time()
        try:
            result = metrics.evaluate_generator(self.gan.serving_generator, self.model_config, n=self.cfg.eval_samples)
        except Exception as error:  # noqa: BLE001  (a broken evaluator must not end the training)
            self.writer.log(f"evaluation skipped: {type(error).__name__}: {error}")
            return {}
        return dict(metrics.summary(result), eval_time_s=round(time.time() - start, 2))

    def _save_checkpoint(self) -> None:
        self.manager.save(checkpoint_number=int(self.counters["step"]))
        self.last_checkpoint = time.time()

    def _save_samples(self, epoch: int) -> None:
        from aigc.engine.sampling import grid, run_generator

        per_row = SAMPLE_COLUMNS
        rng = np.random.default_rng(SAMPLE_SEED)
        z = rng.standard_normal((10 * per_row, self.model_config.latent_dim)).astype(np.float32)
        labels = np.repeat(np.arange(10, dtype=np.int32), per_row)
        images = run_generator(self.gan.serving_generator, z, labels if self.model_config.conditional else None)
        picture = grid(images, per_row)
        import io

        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        atomic_write_bytes(self.paths.sample_path(epoch), buffer.getvalue())

    def _save_generator(self, epoch: int) -> None:
        from aigc.engine.checkpoints import export_for_serving, save_generator

        card = {"preset": self.model_config.preset, "epochs": epoch, "step": int(self.counters["step"]),
                "run_dir": str(self.paths.root), "saved_at": time.time()}
        serving = export_for_serving(self.gan.serving_generator, self.model_config)
        save_generator(serving, self.paths.generator, config=self.model_config, card=card)
        # The discriminator rides along so that "train more" from these weights keeps its critic.
        critic = export_for_serving(self.gan.discriminator, self.model_config, discriminator=True)
        save_generator(critic, self.paths.discriminator, config=self.model_config, card=card)

    def _finish(self, state: str, message: str) -> str:
        self.writer.update(state=state, eta_s=None, epoch=int(self.counters["epoch"]),
                           step=int(self.counters["step"]), finished_at=time.time())
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


def main_guarded(cfg: TrainConfig) -> int:
    """Entry for the CLI: exit code 0 for finished/stopped, 1 for failed."""
    state = run(cfg)
    sys.stdout.flush()
    return 1 if state == "failed" else 0
