"""`python -m aigc bench --crowd N [--watchers W]`: N concurrent sessions on `streamlit run app.py`, on loopback.

Each clicking session opens the page, then presses "New seed" (a new grid: a real generation) M
times with think time. Reported: click-to-image p50/p95/max (first new image in the page + its
media GET), errors, the server's RSS at start (after warm-up sessions), peak and end (after every
session closed), memory per session, and the client's own CPU share, so that a saturated load
generator cannot pass for a slow server. Also: rerun latency before and right after a
clear-cache message. Sessions are driven over Streamlit's websocket protocol (bench.ws_client).

With --watchers W (bench/crowd_job.py), W of the N sessions open /train instead and poll its live view as a browser
does (the fragment's automatic reruns) while a real training job runs, started as the page starts
one (niced, one core left to the server) on --data. The server runs in password mode, where
anyone may watch. Also reported: the poll latencies, and the trainer's img/s in a window with no
visitors against the window of the crowd.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import threading
import time

import numpy as np

from bench.ws_client import StreamlitSession
from aigc.settings import ROOT, TRAINING_ENV

RAMP_S = 2.0  # sessions arrive spread over this many seconds (--ramp)
SETTLE_S = 5.0  # after the sessions close, before the end RSS
QUERY = "digit=any&n=16&seed={seed}"  # "/" leads to /generate (st.switch_page), carrying these


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(*, port: int, env: dict | None = None, script: str = "app.py", cwd: str | None = None) -> subprocess.Popen:
    """`streamlit run <script>` on 127.0.0.1:port, in hosted mode (training off) unless env says otherwise."""
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", TRAINING_ENV: "off", **(env or {})}
    return subprocess.Popen(command, cwd=cwd or ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


async def wait_healthy(url: str, *, timeout_s: float = 90.0) -> None:
    """Poll /_stcore/health until it answers 200."""
    from bench.ws_client import http_get

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (await http_get(url + "/_stcore/health", timeout=2))[0] == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"the server at {url} did not answer /_stcore/health in {timeout_s:.0f} s")


class Sampler:
    """Samples a process's RSS (with children) every 0.1 s in the event loop; keeps the peak."""

    def __init__(self, pid: int):
        import psutil

        self.process = psutil.Process(pid)
        self.peak_mb = 0.0
        self._task = None

    def rss_mb(self) -> float:
        """Resident memory of the process and its children, MB."""
        total = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except Exception:  # noqa: BLE001  (a child may exit between listing and reading)
                continue
        return total / 2**20

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server has used so far."""
        times = self.process.cpu_times()
        return times.user + times.system

    async def _loop(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, self.rss_mb())
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self.peak_mb = self.rss_mb()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


async def one_visitor(url: str, index: int, *, clicks: int, think_s: float, delay_s: float, out: dict) -> None:
    """Open the page, then press New seed `clicks` times; appends click-to-image seconds and errors to out."""
    await asyncio.sleep(delay_s)
    session = StreamlitSession(url, query=QUERY.format(seed=index))

    async def visit():
        opened = await session.open()
        out["errors"] += [f"open: {e}" for e in opened.errors]
        for _ in range(clicks):
            await asyncio.sleep(think_s * random.uniform(0.5, 1.5))
            result = await session.run(click="New seed")
            if result.errors or result.image_s is None:
                out["errors"] += result.errors or ["no new image"]
                continue
            out["click_s"].append(result.image_s + await session.fetch(result.images[0]))
        out["upstreams"].append(sorted(session.upstream))

    await counted(session, visit, out)


async def counted(session: StreamlitSession, body, out: dict, *, prefix: str = "") -> None:
    """await body(); a failure is a counted error (not a crash of the bench); the session is closed either way."""
    try:
        await body()
    except Exception as error:  # noqa: BLE001
        out["errors"].append(f"{prefix}{type(error).__name__}: {str(error)[:120]}")
    finally:
        try:
            await session.close()
        except Exception:  # noqa: BLE001
            pass


async def one_watcher(url: str, *, delay_s: float, stop: asyncio.Event, out: dict) -> None:
    """Open /train and poll its live fragment at the page's own interval until `stop`; poll seconds and errors to out."""
    await asyncio.sleep(delay_s)
    session = StreamlitSession(url, page="train")

    async def watch():
        opened = await session.open()
        out["errors"] += [f"watch open: {e}" for e in opened.errors]
        if not opened.polls:
            out["errors"].append("watch: the Train page does not poll (no running job seen)")
            return
        fragment, interval = next(iter(opened.polls.items()))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
                break
            except asyncio.TimeoutError:
                pass
            begin = time.perf_counter()
            result = await session.run(fragment=fragment)
            out["poll_s"].append(time.perf_counter() - begin)
            out["errors"] += [f"poll: {e}" for e in result.errors]
            if result.polls:
                fragment, interval = next(iter(result.polls.items()))

    await counted(session, watch, out, prefix="watch ")


async def clear_cache_effect(url: str, *, repeats: int = 10) -> dict:
    """Median rerun seconds before a clear-cache message, the first rerun after it, and the median after."""
    session = StreamlitSession(url, query=QUERY.format(seed=0))
    await session.open()
    before = [(await session.run()).finished_s for _ in range(repeats)]
    await session.clear_cache()
    after = [(await session.run()).finished_s for _ in range(repeats)]
    await session.close()
    return {"rerun_before_ms": 1000 * float(np.median(before)), "first_after_clear_ms": 1000 * after[0],
            "rerun_after_ms": 1000 * float(np.median(after[1:]))}


def wait_idle(pid: int | None, *, below: float = 5.0, quiet_s: float = 5.0, timeout_s: float = 180.0) -> float:
    """Seconds waited until the process used under `below`% of one core for `quiet_s` in a row. A server warms up
    in a background thread a few seconds after its first page (aigc/app/frame.py): a drawing meanwhile would time
    that instead, so the quiet stretch is longer than that delay."""
    import psutil

    start, quiet, tick = time.perf_counter(), 0.0, 0.5
    try:
        process = psutil.Process(pid) if pid else None
        while process and quiet < quiet_s and time.perf_counter() - start < timeout_s:
            before = sum(process.cpu_times()[:2])
            time.sleep(tick)
            busy = (sum(process.cpu_times()[:2]) - before) / tick * 100 >= below
            quiet = 0.0 if busy else quiet + tick
    except psutil.Error:
        pass
    return time.perf_counter() - start


async def crowd_against(url: str, *, sessions: int, clicks: int, think_s: float, server_pid: int | None,
                        watchers: int = 0, ramp_s: float = RAMP_S) -> dict:
    """Run the crowd against a healthy server at url; the figures as a dict."""
    sampler = Sampler(server_pid) if server_pid else None
    warm = StreamlitSession(url, query=QUERY.format(seed=10**6))
    await warm.open()  # the first page loads TensorFlow and the generator: not part of "start"
    await warm.close()
    if watchers:  # the run's watcher reads its files once for the whole server: not part of "start" either
        warm = StreamlitSession(url, page="train")
        await warm.open()
        await warm.close()
    await asyncio.sleep(1.0)
    start_mb = sampler.rss_mb() if sampler else None
    if sampler:
        sampler.start()
    out = {"click_s": [], "errors": [], "upstreams": [], "poll_s": []}
    stop = asyncio.Event()
    client_cpu, server_cpu, wall = time.process_time(), sampler.cpu_s() if sampler else 0.0, time.perf_counter()
    clickers = sessions - watchers
    watching = [asyncio.create_task(one_watcher(url, delay_s=ramp_s * i / max(watchers, 1), stop=stop, out=out))
                for i in range(watchers)]
    started = time.time()
    await asyncio.gather(*(one_visitor(url, i, clicks=clicks, think_s=think_s, delay_s=ramp_s * i / clickers, out=out)
                           for i in range(clickers)))
    ended = time.time()
    stop.set()
    await asyncio.gather(*watching)
    wall = time.perf_counter() - wall
    client_cpu = time.process_time() - client_cpu
    server_cpu = (sampler.cpu_s() - server_cpu) if sampler else None
    await asyncio.sleep(SETTLE_S)
    result = _summary(out, sessions=sessions, clicks=clicks, think_s=think_s, wall=wall, client_cpu=client_cpu,
                      server_cpu=server_cpu)
    result.update(watchers=watchers, clickers=clickers, crowd_window=(started, ended), ramp_s=ramp_s)
    if watchers:
        polls = np.array(out["poll_s"]) * 1000 if out["poll_s"] else np.array([np.nan])
        result.update(polls=len(out["poll_s"]), poll_p50_ms=float(np.percentile(polls, 50)),
                      poll_p95_ms=float(np.percentile(polls, 95)))
    if sampler:
        sampler.stop()
        result.update(rss_start_mb=start_mb, rss_peak_mb=sampler.peak_mb, rss_end_mb=sampler.rss_mb(),
                      mb_per_session=(sampler.peak_mb - start_mb) / sessions)
    return result


def _summary(out: dict, *, sessions, clicks, think_s, wall, client_cpu, server_cpu) -> dict:
    times = np.array(out["click_s"]) * 1000 if out["click_s"] else np.array([np.nan])
    cores = os.cpu_count() or 1
    return {"sessions": sessions, "clicks_per_session": clicks, "think_s": think_s, "wall_s": wall,
            "clicks_ok": len(out["click_s"]), "errors": len(out["errors"]), "error_samples": out["errors"][:5],
            "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "max_ms": float(np.max(times)), "client_cpu_s": client_cpu, "server_cpu_s": server_cpu,
            "client_machine_share": client_cpu / (wall * cores),
            "client_cpu_share": client_cpu / (client_cpu + server_cpu) if server_cpu else None,
            "upstreams": out["upstreams"]}


def run_coroutine(make_coroutine):
    """asyncio.run(make_coroutine()), in a thread of its own when this thread already runs an event loop.

    (Playwright's sync API, a notebook or a test session may hold one; asyncio.run refuses to nest.)
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make_coroutine())
    outcome = {}

    def target():
        try:
            outcome["value"] = asyncio.run(make_coroutine())
        except BaseException as error:  # noqa: BLE001  (re-raised in the caller's thread)
            outcome["error"] = error

    thread = threading.Thread(target=target, name="crowd-event-loop")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def crowd(*, sessions: int, clicks: int = 5, think_s: float = 2.0, clear_cache: bool = True,
          ramp_s: float = RAMP_S) -> dict:
    """Start the app on 127.0.0.1 in hosted mode, run the crowd of clickers; the figures (with watchers: crowd_job)."""
    port = free_port()
    server = start_server(port=port)
    url = f"http://127.0.0.1:{port}"

    async def main() -> dict:
        await wait_healthy(url)
        result = await crowd_against(url, sessions=sessions, clicks=clicks, think_s=think_s, server_pid=server.pid,
                                     ramp_s=ramp_s)
        if clear_cache:
            result["clear_cache"] = await clear_cache_effect(url)
        return result

    try:
        return run_coroutine(main)
    finally:
        stop_server(server)


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def render(result: dict) -> str:
    """The crowd figures as a few lines of text."""
    lines = [f"crowd: {result['sessions']} sessions x {result['clicks_per_session']} clicks (think "
             f"{result['think_s']:.1f} s), arriving over {result.get('ramp_s', RAMP_S):g} s, {result['wall_s']:.0f} s",
             f"  click-to-image p50 {result['p50_ms']:.0f} ms, p95 {result['p95_ms']:.0f} ms, max "
             f"{result['max_ms']:.0f} ms; {result['clicks_ok']} ok, {result['errors']} errors"]
    if result.get("watchers"):
        lines[0] = (f"crowd: {result['clickers']} sessions x {result['clicks_per_session']} clicks (think "
                    f"{result['think_s']:.1f} s) + {result['watchers']} watching a running job, arriving over "
                    f"{result['ramp_s']:g} s, {result['wall_s']:.0f} s")
        lines.append(f"  watchers: {result['polls']} polls, p50 {result['poll_p50_ms']:.0f} ms, p95 "
                     f"{result['poll_p95_ms']:.0f} ms")
        alone, crowd_rate = result.get("trainer_img_s_alone"), result.get("trainer_img_s_crowd")
        if alone and crowd_rate:
            lines.append(f"  trainer: {alone:.0f} img/s with no visitors, {crowd_rate:.0f} img/s during the crowd "
                         f"({result['trainer_share']:.0%})")
    if result.get("rss_start_mb") is not None:
        lines.append(f"  server RSS start {result['rss_start_mb']:.0f} MB, peak {result['rss_peak_mb']:.0f} MB, end "
                     f"{result['rss_end_mb']:.0f} MB ({result['mb_per_session']:.1f} MB per session)")
    share = result.get("client_cpu_share")
    lines.append(f"  client CPU {result['client_cpu_s']:.1f} s = {result['client_machine_share']:.0%} of the machine"
                 + (f", {share:.0%} of client+server CPU" if share is not None else ""))
    if result.get("error_samples"):
        lines.append("  errors: " + " | ".join(result["error_samples"]))
    clear = result.get("clear_cache")
    if clear:
        lines.append(f"  rerun {clear['rerun_before_ms']:.0f} ms before a clear-cache message, "
                     f"{clear['first_after_clear_ms']:.0f} ms right after, {clear['rerun_after_ms']:.0f} ms after")
    return "\n".join(lines)
