"""The epoch loop of a training run: chunks of steps, learning-rate schedule, logging, checkpoints, the
first epoch's quick checks, per-epoch samples, generator files and evaluation.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from aigc.engine.data import epoch_batches, epoch_seed
from aigc.engine.inside import save_epoch as save_inside
from aigc.engine.progress import Progress, epoch_line
from aigc.runs.files import atomic_write_bytes, png_bytes

if TYPE_CHECKING:  # annotations only: this module loads before TensorFlow is needed
    from aigc.engine.cluster import Role
    from aigc.engine.gan import GAN
    from aigc.engine.run_plan import Plan
    from aigc.engine.run_writer import RunWriter, StopFlag

SAMPLE_SEED = 1234
SAMPLE_COLUMNS = 10
PROBE_SAMPLES = 500  # a quick check's samples: ~1 s on 2 cores, noisier than the epoch's evaluation


def steps_per_call(batch_size: int, log_every: int) -> int:
    """Train steps per call of GAN.train_steps: about 1k images, so a stop or a checkpoint waits ~1 s at most,
    and no more than a metrics line's worth."""
    return max(1, min(32, round(1024 / batch_size), log_every))


class Steps:
    """The train steps in the trainer's order: each epoch's shuffled batches, a chunk of steps per call, and the
    spec's schedule (counted from the epochs behind the starting weights) before each chunk.

    The epoch loop drives it, and so does the benchmark, which therefore times the trainer's own steps.
    """

    def __init__(self, gan: "GAN", n_images: int, *, base_epochs: int = 0):
        self.gan, self.spec, self.n_images, self.base_epochs = gan, gan.spec, n_images, base_epochs
        self.steps_per_epoch = n_images // self.spec.batch_size
        self.chunk = steps_per_call(self.spec.batch_size, self.spec.log_every)

    def rows(self, epoch: int, skip: int = 0) -> np.ndarray:
        """Epoch `epoch`'s (1-based) batches of image indices, less the first `skip` ones (already trained)."""
        return epoch_batches(self.n_images, batch_size=self.spec.batch_size,
                             epoch_seed=epoch_seed(self.spec.seed, epoch), skip_batches=skip)

    def train(self, rows: np.ndarray, epochs_done: float) -> dict:
        """len(rows) steps at the schedule's point after epochs_done epochs of this run; their mean metrics."""
        self.gan.follow_schedule(self.base_epochs + epochs_done)
        return self.gan.train_steps(rows)

    def runner(self):
        """run(steps): train that many steps, epoch after epoch, in chunks as the epoch loop does (the benchmark's)."""
        state = {"epoch": 0, "done": 0, "rows": np.zeros((0, self.spec.batch_size), np.int32)}

        def run(steps: int) -> None:
            while steps > 0:
                if not len(state["rows"]):
                    state["epoch"] += 1
                    state["rows"] = self.rows(state["epoch"])
                count = min(self.chunk, steps, len(state["rows"]))
                self.train(state["rows"][:count], state["done"] / self.steps_per_epoch)
                state["rows"], state["done"], steps = state["rows"][count:], state["done"] + count, steps - count
        return run


class EpochLoop:
    """The epoch loop with its bookkeeping: logging, checkpoints, samples, evaluation."""

    def __init__(self, plan: "Plan", steps: Steps, *, writer: "RunWriter", manager, counters: dict,
                 stop: "StopFlag", role: "Role"):
        self.spec = plan.spec  # the plan's, epochs included: the total this invocation trains to
        self.invocation = plan.invocation
        self.paths = plan.paths
        self.steps = steps
        self.gan = steps.gan
        self.model_config = steps.gan.config
        self.steps_per_epoch = steps.steps_per_epoch
        self.total_epochs = plan.spec.epochs
        self.writer = writer
        self.manager = manager  # tf.train.CheckpointManager
        self.counters = counters  # tf.Variable epoch, step, step_in_epoch: the checkpoint's, the one count of progress
        self.stop = stop
        self.chief = role.chief
        self.agree = None  # set for a cluster: decisions that must be the same on every worker
        self.steps_this_run = 0
        self.last_checkpoint = time.time()
        self.step_times: list[tuple[float, int]] = []  # (time, global step) after each call, for the ETA
        self.chunk = steps.chunk
        self.probe_clock = 0.0  # training seconds since the last probe (first epoch only)

    def run(self) -> str:
        while int(self.counters["epoch"]) < self.total_epochs:
            epoch = int(self.counters["epoch"]) + 1
            reason = self._decide(checkpoint_due=False)[0]  # a stop asked for during the last epoch's end
            if reason:
                self._stop_now(epoch, reason)
            else:
                reason = self._epoch(epoch, self.steps.rows(epoch, int(self.counters["step_in_epoch"])))
            if reason:
                return self._finish("stopped", f"stopped ({reason})")
        return self._finish("finished", "finished")

    def _epoch(self, epoch: int, rows) -> str | None:
        """Train the epoch's remaining batches (rows of image indices), a chunk of steps per call."""
        progress = Progress(epoch=epoch, total_epochs=self.total_epochs, steps_per_epoch=self.steps_per_epoch,
                            batch_size=self.spec.batch_size, log=self.writer.log)
        window, epoch_sums, epoch_count = [], {}, 0
        epoch_start = window_start = time.time()
        while len(rows):
            count = min(self.chunk, len(rows), self._steps_left())
            started = time.time()
            values = self.steps.train(rows[:count], self._progress(epoch))
            rows = rows[count:]
            self._count_steps(count)
            window.append((count, values))
            for key, value in values.items():
                epoch_sums[key] = epoch_sums.get(key, 0.0) + value * count
            epoch_count += count
            progress.update(int(self.counters["step_in_epoch"]), seconds_per_step=self._seconds_per_step(),
                            eta_s=self._progress_fields(epoch)["eta_s"])
            if sum(n for n, _v in window) >= self.spec.log_every:
                self._log_window(epoch, window, time.time() - window_start)
                window, window_start = [], time.time()
            if not len(rows):
                break  # the epoch's end saves, samples and evaluates; a stop then waits for the next epoch's start
            window_start += self._maybe_probe(epoch, time.time() - started)  # a check is not training time
            reason, checkpoint_due = self._decide(
                checkpoint_due=time.time() - self.last_checkpoint >= self.spec.checkpoint_seconds)
            if reason:
                progress.close()
                self._stop_now(epoch, reason)
                return reason
            if checkpoint_due:
                self._save_checkpoint()
        progress.close()
        self._end_epoch(epoch, epoch_sums, epoch_count, time.time() - epoch_start)
        return None

    def _decide(self, *, checkpoint_due: bool) -> tuple[str | None, bool]:
        """(stop reason, checkpoint now?): in a cluster the chief's clock decides checkpoints and any worker's
        signal stops everyone (every worker calls this at the same points)."""
        reason = self._should_stop()
        if self.agree:
            return self.agree(reason, checkpoint_due and self.chief)
        return reason, checkpoint_due

    def _stop_now(self, epoch: int, reason: str) -> None:
        self.writer.update(state="stopping", stop_reason=reason, eta_s=None)
        self._save_checkpoint()
        self._save_generator(epoch - 1)

    def _steps_left(self) -> int:
        """Steps this invocation may still train (--max-steps), at least 1."""
        if not self.invocation.max_steps:
            return self.chunk
        return max(1, self.invocation.max_steps - self.steps_this_run)

    def _progress(self, epoch: int) -> float:
        """Epochs trained so far, fractional (epoch 1 half done: 0.5)."""
        return epoch - 1 + int(self.counters["step_in_epoch"]) / max(1, self.steps_per_epoch)

    def _count_steps(self, count: int) -> None:
        self.counters["step"].assign_add(count)
        self.counters["step_in_epoch"].assign_add(count)
        self.steps_this_run += count
        self.step_times = (self.step_times + [(time.time(), int(self.counters["step"]))])[-20:]

    def _should_stop(self) -> str | None:
        if self.invocation.max_steps and self.steps_this_run >= self.invocation.max_steps:
            return f"--max-steps {self.invocation.max_steps} reached"
        return self.stop.reason()

    def _seconds_per_step(self) -> float | None:
        if len(self.step_times) < 2:
            return None
        (first, first_step), (last, last_step) = self.step_times[0], self.step_times[-1]
        return (last - first) / max(1, last_step - first_step)

    def _progress_fields(self, epoch: int) -> dict:
        per_step = self._seconds_per_step()
        done = (epoch - 1) * self.steps_per_epoch + int(self.counters["step_in_epoch"])
        remaining = self.total_epochs * self.steps_per_epoch - done
        return dict(epoch=epoch - 1, current_epoch=epoch, step=int(self.counters["step"]),
                    step_in_epoch=int(self.counters["step_in_epoch"]),
                    eta_s=round(remaining * per_step, 1) if per_step else None)

    def _log_window(self, epoch: int, window: list[tuple[int, dict]], seconds: float) -> None:
        steps = sum(count for count, _values in window)
        record = {k: sum(count * values[k] for count, values in window) / steps for k in window[0][1]}
        record.update(kind="step", epoch=epoch, step=int(self.counters["step"]), time=time.time(),
                      img_per_s=round(steps * self.spec.batch_size / max(seconds, 1e-9), 1))
        self.writer.metrics(record)
        self.writer.update(state="running", img_per_s=record["img_per_s"], **self._progress_fields(epoch))

    def _end_epoch(self, epoch: int, sums: dict, count: int, seconds: float) -> None:
        self.counters["epoch"].assign(epoch)
        self.counters["step_in_epoch"].assign(0)
        record = {k: v / max(count, 1) for k, v in sums.items()}
        record.update(kind="epoch", epoch=epoch, step=int(self.counters["step"]), time=time.time())
        if count:  # (a run resumed from a checkpoint taken after the epoch's last step trains none of it here)
            record.update(epoch_time_s=round(seconds, 2), img_per_s=round(count * self.spec.batch_size / seconds, 1))
        self._save_samples(epoch)
        save_inside(self.paths, epoch, self.gan, seed=SAMPLE_SEED, columns=SAMPLE_COLUMNS, chief=self.chief, log=self.writer.log)
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
        self.writer.log(epoch_line(epoch, self.total_epochs, record))

    def _maybe_probe(self, epoch: int, seconds: float) -> float:
        """In the run's first epoch, every probe_seconds of training: the live sample grid and a quick quality check.
        Returns the seconds it took (0 when it was not due)."""
        if epoch != 1 or not self.spec.probe_seconds or not self.chief:
            return 0.0
        self.probe_clock += seconds
        if self.probe_clock < self.spec.probe_seconds:
            return 0.0
        self.probe_clock, began = 0.0, time.time()
        self._save_samples(None)
        step = int(self.counters["step"])
        record = dict(kind="probe", epoch=round(self._progress(epoch), 4), step=step, time=time.time(),
                      images=step * self.spec.batch_size, **self._evaluate(PROBE_SAMPLES))
        self.writer.metrics(record)
        return time.time() - began

    def _evaluate(self, samples: int | None = None) -> dict:
        from aigc.quality import metrics

        samples = samples or self.spec.eval_samples
        if not self.chief or not self.spec.eval_samples or not metrics.evaluator_available():
            return {}
        start = time.time()
        try:
            result = metrics.evaluate_generator(self.gan.serving_generator, self.model_config, n=samples)
        except Exception as error:  # noqa: BLE001  (a broken evaluator must not end the training)
            self.writer.log(f"evaluation skipped: {type(error).__name__}: {error}")
            return {}
        return dict(metrics.summary(result), eval_n=samples, eval_time_s=round(time.time() - start, 2))

    def _save_checkpoint(self) -> None:
        self.manager.save(checkpoint_number=int(self.counters["step"]))
        self.last_checkpoint = time.time()

    def _save_samples(self, epoch: int | None) -> None:
        """The fixed-seed grid (row = digit) of an epoch, or the live grid of the first epoch when epoch is None."""
        from aigc.engine.sampling import grid, run_generator

        if not self.chief:
            return  # only the run directory's writer draws samples

        per_row = SAMPLE_COLUMNS
        rng = np.random.default_rng(SAMPLE_SEED)
        z = rng.standard_normal((10 * per_row, self.model_config.latent_dim)).astype(np.float32)
        labels = np.repeat(np.arange(10, dtype=np.int32), per_row)
        images = run_generator(self.gan.serving_generator, z, labels if self.model_config.conditional else None)
        target = self.paths.live_sample if epoch is None else self.paths.sample_path(epoch)
        atomic_write_bytes(target, png_bytes(grid(images, per_row)))

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

