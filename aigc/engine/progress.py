"""What the trainer prints for people (no TensorFlow): the epoch line and progress within an epoch.

Dates print as local ISO times and durations as durations (aigc.text); counts agree with their nouns.
"""
from __future__ import annotations

import datetime as dt
import shutil
import sys
import time

from aigc.text import counted, duration

PROGRESS_SECONDS = 10.0  # a progress line this often when stdout is not a terminal (train.log); tests set it small
TERMINAL_SECONDS = 0.2  # the terminal's one progress line is redrawn at most this often
NOT_LOSSES = ("kind", "epoch", "step", "time", "epoch_time_s", "img_per_s", "eval_time_s", "eval_n",
              "fdd", "precision", "recall", "digit_score", "class_accuracy", "collapsed_digits", "collapse")


def local_time(stamp: float) -> str:
    """A Unix time as this machine's local ISO time to the second: '2026-12-07T04:10:33'."""
    return dt.datetime.fromtimestamp(stamp).isoformat(timespec="seconds")


def epoch_line(epoch: int, total_epochs: int, record: dict) -> str:
    """The line printed at an epoch's end: when, how long, how fast, the mean losses, and quality with its sample count."""
    head = f"epoch {epoch}/{total_epochs} ended {local_time(record['time'])}"
    if record.get("epoch_time_s") is not None:
        head += f" after {duration(record['epoch_time_s'])} ({record['img_per_s']:,.0f} img/s)"
    losses = ", ".join(f"{key} {value:.4g}" for key, value in record.items()
                       if key not in NOT_LOSSES and isinstance(value, float))
    line = f"{head}: {losses}" if losses else head
    quality = ", ".join(f"{key} {record[key]:.4g}" for key in ("fdd", "precision", "recall", "digit_score",
                                                                "class_accuracy")
                        if isinstance(record.get(key), float))
    if quality:
        samples = f" on {counted(record['eval_n'], 'sample')}" if record.get("eval_n") else ""
        took = f" (measured in {duration(record['eval_time_s'])})" if record.get("eval_time_s") is not None else ""
        line += f"; quality{samples}{took}: {quality}"
    return line


class Progress:
    """Progress within an epoch: steps done of the epoch's, img/s and the time left.

    On a terminal one line redrawn in place; otherwise (a log file, the app's train.log) a line through `log`
    every PROGRESS_SECONDS, so a long first epoch is never silent.
    """

    def __init__(self, *, epoch: int, total_epochs: int, steps_per_epoch: int, batch_size: int, log=print,
                 stream=None):
        self.epoch, self.total_epochs, self.steps_per_epoch = epoch, total_epochs, steps_per_epoch
        self.batch_size, self.log = batch_size, log
        self.stream = stream or sys.stdout
        self.terminal = _is_terminal(self.stream)
        self.last_shown = time.time()
        self.drawn = False

    def update(self, step_in_epoch: int, *, seconds_per_step: float | None, eta_s: float | None) -> None:
        """After a chunk of steps: show the line if it is due (seconds_per_step, eta_s: None while unmeasured)."""
        due = TERMINAL_SECONDS if self.terminal else PROGRESS_SECONDS
        last = self.terminal and step_in_epoch >= self.steps_per_epoch  # the terminal's line ends showing 100%
        if time.time() - self.last_shown < due and not last:
            return
        self.last_shown = time.time()
        text = self.text(step_in_epoch, seconds_per_step=seconds_per_step, eta_s=eta_s)
        if self.terminal:
            width = shutil.get_terminal_size().columns - 1  # a wrapped line could not be redrawn in place
            self.stream.write(f"\r{text[:width]}\033[K")  # \033[K: clear what a longer previous line left
            self.stream.flush()
            self.drawn = True
        else:
            self.log(text)

    def text(self, step_in_epoch: int, *, seconds_per_step: float | None, eta_s: float | None) -> str:
        """'epoch 1/5: step 320/1,875 (17%), 412 img/s, epoch ends in 2 min 1 s, run in 12 min'."""
        total = self.steps_per_epoch
        line = f"epoch {self.epoch}/{self.total_epochs}: step {step_in_epoch:,}/{total:,} ({step_in_epoch / max(total, 1):.0%})"
        if not seconds_per_step:
            return line + ", measuring speed"
        line += f", {self.batch_size / seconds_per_step:,.0f} img/s"
        if step_in_epoch >= total:
            return line + ", saving the epoch"
        line += f", epoch ends in {duration((total - step_in_epoch) * seconds_per_step, round_up=True)}"
        if eta_s is not None and self.epoch < self.total_epochs:
            line += f", run in {duration(eta_s, round_up=True)}"
        return line

    def close(self) -> None:
        """End the terminal's progress line, so the next line starts on its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
