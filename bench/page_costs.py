"""`python -m aigc bench --page-costs`: what one Train watcher and one click cost the server, against a floor.

Three measurements, each on a fresh `streamlit run` on loopback, driven by bench.ws_client:
- A big run: a run folder with 10,000 epoch records and 500,000 step records (~100 MB of
  metrics.jsonl) that is "running" (this process holds the training lock for it and appends a step
  record every STEP_EVERY_S, as a trainer does). Reported: seconds for the first /train session to
  open (the server's one watcher catches up on the file), for a second one (shared snapshot), and
  the server CPU per poll of the live fragment over POLLS polls.
- The floor: the same client clicking "New image" on a trivial Streamlit page (one button, one
  image), clicking "New seed" (new digits: a real generation) and rerunning a cached grid on the
  app, in alternating rounds on two servers up at once (a moment of background load falls on all
  three alike). Reported: server CPU per click of each, and the app's ratios to the floor.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from bench.crowd import Sampler, free_port, run_coroutine, start_server, stop_server, wait_healthy, wait_idle
from bench.ws_client import StreamlitSession

EPOCH_RECORDS = 10_000
STEPS_PER_EPOCH = 50  # 500,000 step records in all
POLLS = 30
STEP_EVERY_S = 3.0  # a trainer on 2 cores writes a step record every ~3 s
CLICKS = 30
ROUNDS = 6  # the floor's clicks alternate between the trivial page and the app in this many rounds
IDLE_S = 15.0  # the server's CPU with the tab open and no poll, to tell the poll's own cost from the background
TRIVIAL_PAGE = '''import numpy as np
import streamlit as st

st.button("New image")
st.image(np.random.default_rng().integers(0, 256, (112, 112), dtype=np.uint8), width=224)
'''


def write_big_run(root: Path, *, epochs: int = EPOCH_RECORDS, steps_per_epoch: int = STEPS_PER_EPOCH) -> Path:
    """A run folder of `epochs` epochs with `steps_per_epoch` step records each, in the trainer's format."""
    from aigc.engine.spec import SETTINGS, RunSpec
    from aigc.runs.files import atomic_write_json
    from aigc.runs.layout import RunPaths

    paths = RunPaths(root / "run-big")
    paths.root.mkdir(parents=True)
    now = time.time()
    with open(paths.metrics, "w") as handle:
        step = 0
        for epoch in range(1, epochs + 1):
            lines = []
            for _ in range(steps_per_epoch):
                step += 20
                lines.append(json.dumps({"g_loss": 1.0 + (step % 97) / 100, "d_loss": 1.2, "d_real": 0.6,
                                         "d_fake": 0.4, "kind": "step", "epoch": epoch, "step": step,
                                         "time": now - 1e5 + step / 100, "img_per_s": 500.0}))
            lines.append(json.dumps({"g_loss": 1.1, "d_loss": 1.2, "d_real": 0.6, "d_fake": 0.4, "kind": "epoch",
                                     "epoch": epoch, "step": step, "time": now - 1e5 + step / 100,
                                     "epoch_time_s": 120.0, "img_per_s": 500.0, "fdd": 2.0 + 30.0 / epoch,
                                     "class_accuracy": 0.99, "digit_score": 9.9, "collapsed_digits": []}))
            handle.write("\n".join(lines) + "\n")
    total = int(SETTINGS["epochs"].high)  # the most a run may plan: this one is still running
    atomic_write_json(paths.config, {"spec": RunSpec.resolve(epochs=total).to_dict()})
    _write_status(paths, epoch=min(epochs, total - 1), step=step, steps_per_epoch=steps_per_epoch * 20, total=total)
    return paths.root


def _write_status(paths, *, epoch: int, step: int, steps_per_epoch: int, total: int) -> None:
    from aigc.runs.files import atomic_write_json

    atomic_write_json(paths.status, {"state": "running", "epoch": epoch, "current_epoch": epoch + 1,
                                     "total_epochs": total, "steps_per_epoch": steps_per_epoch, "step": step,
                                     "step_in_epoch": step % steps_per_epoch, "img_per_s": 500.0,
                                     "pid": os.getpid(), "updated_at": time.time()})


class FakeTrainer:
    """Holds the training lock for a run folder and appends a step record every `every_s`, as a trainer does."""

    def __init__(self, runs_root: Path, run_dir: Path, *, every_s: float = STEP_EVERY_S):
        from aigc.runs.layout import RunPaths
        from aigc.runs.lock import TrainingLock

        self.lock, self.paths, self.every_s = TrainingLock(runs_root), RunPaths(run_dir), every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-trainer", daemon=True)
        self.appended = 0

    def __enter__(self):
        if not self.lock.acquire(self.paths.root):
            raise RuntimeError("the training lock is held by another process")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.lock.release()

    def _loop(self) -> None:
        status = json.loads(self.paths.status.read_text())
        step = int(status["step"])
        while not self._stop.wait(self.every_s):
            step += 20
            with open(self.paths.metrics, "a") as handle:
                handle.write(json.dumps({"g_loss": 1.0, "d_loss": 1.2, "d_real": 0.6, "d_fake": 0.4, "kind": "step",
                                         "epoch": status["epoch"] + 1, "step": step, "time": time.time(),
                                         "img_per_s": 500.0}) + "\n")
            self.appended += 1
            _write_status(self.paths, epoch=status["epoch"], step=step, steps_per_epoch=status["steps_per_epoch"],
                          total=status["total_epochs"])


def _server(env: dict, *, script: str = "app.py", cwd: str | None = None):
    port = free_port()
    return start_server(port=port, env=env, script=script, cwd=cwd), f"http://127.0.0.1:{port}"


async def _warm(url: str) -> None:
    """One Generate visit: TensorFlow and the generator load here, not in what is measured."""
    session = StreamlitSession(url, query="digit=any&n=16&seed=1")
    await session.open()
    await session.close()


async def timed_runs(session: StreamlitSession, count: int, *, pause_s: float = 0.0, **run) -> tuple[list, list]:
    """(wall seconds of each, errors): `count` runs of session.run(**run), each after pause_s."""
    walls, errors = [], []
    for _ in range(count):
        await asyncio.sleep(pause_s)
        begin = time.perf_counter()
        result = await session.run(**run)
        walls.append(time.perf_counter() - begin)
        errors += result.errors
    return walls, errors


async def big_run_costs(url: str, server_pid: int, *, polls: int) -> dict:
    sampler = Sampler(server_pid)
    await _warm(url)
    first = StreamlitSession(url, page="train")
    start = time.perf_counter()
    opened = await first.open()
    first_open_s = time.perf_counter() - start
    second = StreamlitSession(url, page="train")
    start = time.perf_counter()
    await second.open()
    second_open_s = time.perf_counter() - start
    await second.close()
    if not opened.polls:
        raise RuntimeError("the Train page did not poll: the fake job is not seen as running "
                           f"(page said: {' | '.join(t[:80] for t in opened.texts[:4])})")
    fragment, interval = next(iter(opened.polls.items()))
    idle_from, cpu = time.perf_counter(), sampler.cpu_s()
    await asyncio.sleep(IDLE_S)  # the server's own background work (Streamlit polls its config files) over time
    idle_per_interval = (sampler.cpu_s() - cpu) / (time.perf_counter() - idle_from) * interval
    cpu = sampler.cpu_s()
    walls, errors = await timed_runs(first, polls, pause_s=interval, fragment=fragment)  # AutoRerun.interval: s
    cpu_per_poll = (sampler.cpu_s() - cpu) / polls
    errors = opened.errors + errors
    await first.close()
    return {"first_open_s": first_open_s, "second_open_s": second_open_s, "polls": polls,
            "poll_cpu_ms": 1000 * cpu_per_poll, "idle_cpu_ms_per_interval": 1000 * idle_per_interval,
            "poll_wall_ms_median": 1000 * sorted(walls)[len(walls) // 2],
            "poll_interval_s": interval, "errors": errors[:5], "rss_mb": sampler.rss_mb()}


class _Clicker:
    """One session pressing one button (or rerunning) on one server: server CPU and client wall per press, summed
    over the rounds it is given."""

    def __init__(self, url: str, server_pid: int, *, label: str | None, query: str = "", page: str = ""):
        self.sampler, self.label = Sampler(server_pid), label
        self.session = StreamlitSession(url, query=query, page=page)
        self.cpu_s, self.walls, self.errors = 0.0, [], []

    async def open(self) -> None:
        await self.session.open()
        for _ in range(2):  # warm: the first presses build what later ones reuse
            await self.session.run(**self._press())

    def _press(self) -> dict:
        return {"click": self.label} if self.label else {}

    async def round(self, presses: int) -> None:
        cpu = self.sampler.cpu_s()
        walls, errors = await timed_runs(self.session, presses, **self._press())
        self.cpu_s += self.sampler.cpu_s() - cpu
        self.walls += walls
        self.errors += errors

    def result(self) -> dict:
        return {"cpu_ms": 1000 * self.cpu_s / len(self.walls),
                "wall_ms_median": 1000 * sorted(self.walls)[len(self.walls) // 2], "errors": self.errors[:5],
                "presses": len(self.walls)}


async def interleaved_clicks(clickers: dict[str, _Clicker], *, clicks: int, rounds: int = ROUNDS,
                             settle=None) -> dict:
    """Each clicker's figures over `clicks` presses, given in `rounds` alternating rounds (the order rotates), so a
    moment of background load falls on all of them alike: their ratios are measured side by side. `settle`: a
    coroutine function awaited after every session opened (a cold app's warm-up ends before anything is timed)."""
    for clicker in clickers.values():
        await clicker.open()
    if settle is not None:
        await settle()
    names = list(clickers)
    per_round = max(1, clicks // rounds)
    for index in range(rounds):
        for name in names[index % len(names):] + names[:index % len(names)]:
            await clickers[name].round(per_round)
    for clicker in clickers.values():
        await clicker.session.close()
    return {name: clicker.result() for name, clicker in clickers.items()}


def page_costs(*, polls: int = POLLS, clicks: int = CLICKS, epochs: int = EPOCH_RECORDS,
               steps_per_epoch: int = STEPS_PER_EPOCH) -> dict:
    """The big run's open and poll figures, then the floor comparison; each on its own server."""
    from aigc.settings import RUNS_ENV, TRAINING_ENV, TRAINING_PASSWORD_ENV

    result: dict = {"epoch_records": epochs, "step_records": epochs * steps_per_epoch}
    scratch = Path(tempfile.mkdtemp(prefix="aigc-page-costs-"))
    try:
        runs_root = scratch / "runs"
        started = time.perf_counter()
        run_dir = write_big_run(runs_root, epochs=epochs, steps_per_epoch=steps_per_epoch)
        result["written_s"] = time.perf_counter() - started
        result["metrics_mb"] = (run_dir / "metrics.jsonl").stat().st_size / 2**20
        env = {TRAINING_ENV: "password", TRAINING_PASSWORD_ENV: "not-used-by-watchers", RUNS_ENV: str(runs_root)}
        with FakeTrainer(runs_root, run_dir):
            server, url = _server(env)
            try:
                result["big_run"] = run_coroutine(lambda: _after_health(url, big_run_costs(url, server.pid,
                                                                                           polls=polls)))
            finally:
                stop_server(server)
        (scratch / "trivial").mkdir()
        (scratch / "trivial" / "page.py").write_text(TRIVIAL_PAGE)
        trivial, trivial_url = _server({}, script="page.py", cwd=str(scratch / "trivial"))
        app, app_url = _server({TRAINING_ENV: "off"})
        try:
            query = "digit=any&n=16&seed=3"

            async def floor() -> dict:
                await wait_healthy(trivial_url)
                await wait_healthy(app_url)
                return await interleaved_clicks({
                    "trivial": _Clicker(trivial_url, trivial.pid, label="New image"),
                    "new_seed": _Clicker(app_url, app.pid, label="New seed", query=query),
                    "cached_rerun": _Clicker(app_url, app.pid, label=None, query=query)}, clicks=clicks,
                    settle=lambda: asyncio.to_thread(wait_idle, app.pid))

            result.update(run_coroutine(floor))
        finally:
            stop_server(trivial)
            stop_server(app)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    floor = result["trivial"]["cpu_ms"]
    result["new_seed_vs_floor"] = result["new_seed"]["cpu_ms"] / floor
    result["cached_rerun_vs_floor"] = result["cached_rerun"]["cpu_ms"] / floor
    return result


async def _after_health(url: str, coroutine):
    try:
        await wait_healthy(url)
    except BaseException:
        coroutine.close()
        raise
    return await coroutine


def render(result: dict) -> str:
    big = result["big_run"]
    lines = [f"page costs: a running run with {result['epoch_records']:,} epoch and {result['step_records']:,} step "
             f"records ({result['metrics_mb']:.0f} MB of metrics.jsonl)",
             f"  /train opens in {big['first_open_s']:.2f} s (first session: the watcher catches up), "
             f"{big['second_open_s']:.2f} s (second session)",
             f"  live poll every {big['poll_interval_s']:g} s: {big['poll_cpu_ms']:.1f} ms server CPU per poll "
             f"(mean of {big['polls']}), of which {big['idle_cpu_ms_per_interval']:.1f} ms is the server's idle "
             f"background over the same {big['poll_interval_s']:g} s (the poll's own: "
             f"{big['poll_cpu_ms'] - big['idle_cpu_ms_per_interval']:.1f} ms); {big['poll_wall_ms_median']:.0f} ms "
             f"wall (median); server RSS {big['rss_mb']:.0f} MB",
             f"  server CPU per click: trivial page (one button, one image) {result['trivial']['cpu_ms']:.1f} ms; "
             f"app, New seed (new digits) {result['new_seed']['cpu_ms']:.1f} ms = "
             f"{result['new_seed_vs_floor']:.1f}x; app, cached grid rerun {result['cached_rerun']['cpu_ms']:.1f} ms = "
             f"{result['cached_rerun_vs_floor']:.1f}x",
             f"  client wall per click (median): trivial {result['trivial']['wall_ms_median']:.0f} ms, New seed "
             f"{result['new_seed']['wall_ms_median']:.0f} ms, cached rerun {result['cached_rerun']['wall_ms_median']:.0f} ms"]
    errors = big["errors"] + result["trivial"]["errors"] + result["new_seed"]["errors"]
    if errors:
        lines.append("  errors: " + " | ".join(errors))
    return "\n".join(lines)
