"""`bench --crowd N --watchers W`: the mixed crowd during a real training job, and the trainer's speed under it.

A password-mode server on a scratch runs folder (anyone may watch there), a real job in it started
as the page starts one (niced, one core left to the server), W sessions polling /train and N - W
clicking New seed (bench/crowd.py), then the job stopped. The trainer's img/s is read from its own
step records: over BASELINE_S with no visitors, then over the crowd's window.
"""
from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.crowd import RAMP_S, crowd_against, free_port, run_coroutine, start_server, stop_server, wait_healthy
from aigc.runs.files import read_metrics
from aigc.settings import RUNS_ENV, TRAINING_ENV, TRAINING_PASSWORD_ENV

BASELINE_S = 40.0  # the trainer's speed with no visitors is measured over this window
TRAINER_START_S = 180.0  # from the launch to the trainer's second step record, at most


def crowd_with_a_job(*, sessions: int, watchers: int, clicks: int = 5, think_s: float = 2.0, data: str | None = None,
                     baseline_s: float = BASELINE_S, epochs: int = 20, ramp_s: float = RAMP_S) -> dict:
    """The mixed crowd: a password-mode server on a scratch runs folder, a real job in it, the crowd, then the job
    stopped; with the trainer's img/s before and during the crowd."""
    from aigc.serve import jobs
    from aigc.serve.hosting import Policy

    root = Path(tempfile.mkdtemp(prefix="aigc-crowd-runs-"))
    port = free_port()
    server = start_server(port=port, env={TRAINING_ENV: "password", TRAINING_PASSWORD_ENV: secrets.token_hex(16),
                                          RUNS_ENV: str(root)})
    url = f"http://127.0.0.1:{port}"
    launched, before = None, os.environ.get(RUNS_ENV)
    try:
        os.environ[RUNS_ENV] = str(root)  # the trainer locks the runs root of its environment: the server's
        try:
            launched = jobs.start_job(jobs.JobRequest(epochs=epochs, init="shipped", data=data),
                                      policy=Policy(training="on", max_epochs=epochs), root=root)
        finally:
            os.environ.pop(RUNS_ENV) if before is None else os.environ.update({RUNS_ENV: before})
        if not launched.ok:
            raise RuntimeError(f"the training job did not start: {launched.message}")
        metrics = launched.paths.metrics
        _wait_for_steps(metrics, count=2, timeout_s=TRAINER_START_S)
        baseline_from = time.time()
        time.sleep(baseline_s)  # the server idles, the trainer trains: its speed with no visitors
        baseline = trainer_rate(metrics, baseline_from, time.time())

        async def main() -> dict:
            await wait_healthy(url)
            return await crowd_against(url, sessions=sessions, clicks=clicks, think_s=think_s, server_pid=server.pid,
                                       watchers=watchers, ramp_s=ramp_s)

        result = run_coroutine(main)
        during = trainer_rate(metrics, *result.pop("crowd_window"))
        result.update(trainer_img_s_alone=baseline, trainer_img_s_crowd=during,
                      trainer_share=during / baseline if baseline and during else None)
        return result
    finally:
        if launched is not None and launched.ok:
            jobs.stop_job(launched.paths)
            _wait_for_unlock(root)
        stop_server(server)
        shutil.rmtree(root, ignore_errors=True)


def _step_records(metrics) -> list[dict]:
    return [r for r in read_metrics(metrics) if r.get("kind") == "step"]


def _wait_for_steps(metrics, *, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(_step_records(metrics)) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the trainer logged fewer than {count} step records in {timeout_s:.0f} s")
        time.sleep(1.0)


def trainer_rate(metrics, start: float, end: float) -> float | None:
    """The trainer's mean img/s over the step records it wrote between start and end (wall clock), None if none."""
    rates = [r["img_per_s"] for r in _step_records(metrics)
             if start <= r.get("time", 0) <= end and isinstance(r.get("img_per_s"), (int, float))]
    return float(np.mean(rates)) if rates else None


def _wait_for_unlock(root, timeout_s: float = 60.0) -> None:
    from aigc.runs.lock import TrainingLock

    deadline = time.monotonic() + timeout_s
    while TrainingLock(root).holder() is not None and time.monotonic() < deadline:
        time.sleep(0.5)
