"""Hostile visitors over real websockets: `bench --attack` (password guessing) and `bench --canvas N` (forged drawings).

--attack: a password-mode server on loopback that trusts a proxy (AIGC_TRUSTED_PROXY=1); this
process plays the proxy, so each session's X-Real-IP is its address. A attacking sessions, spread
over K addresses (default: all from one), submit wrong passwords as fast as the server answers, for
M minutes. Every OWNER_EVERY_S an owner opens a fresh session from another address and submits the
right password. Reported: attempts, guesses the server checked ("Wrong password.") against those
it refused unchecked, the most checked in any 10 s window after the first minute, and the owner's
seconds from submit to unlocked.

--canvas N: N sessions open /draw and each sends forged canvas values: FORGED_MB just under the
server's per-message limit (maxWidgetStateSize), a few times, then one over it. Reported: the
server's RSS before, at its peak, 5 s after the sessions closed and once Streamlit dropped them (it keeps
a closed session for server.disconnectedSessionTTL, 120 s, in case the tab reconnects), and what each
session was told.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.crowd import (Sampler, counted, free_port, run_coroutine, start_server, stop_server, wait_healthy,
                         wait_idle)
from bench.ws_client import StreamlitSession

OWNER_EVERY_S = 60.0
WINDOW_S = 10.0
PASSWORD_FIELD, UNLOCK = "Training password", "Unlock training"
CHECKED, REFUSED = "Wrong password.", "Too many wrong passwords"
UNDER_LIMIT_MB = 1.9  # .streamlit/config.toml allows 2 MB per message
OVER_LIMIT_MB = 3.0
FORGED_SENDS = 3
SESSION_TTL_S = 120  # Streamlit's server.disconnectedSessionTTL (its default; .streamlit/config.toml leaves it)


def _address(index: int) -> str:
    return f"198.51.100.{1 + index % 250}"  # TEST-NET-2 (RFC 5737): never a real client


async def _attacker(url: str, address: str, *, until: float, out: dict) -> None:
    session = StreamlitSession(url, page="train", headers={"X-Real-IP": address})

    async def guess():
        await session.open()
        while time.monotonic() < until:
            result = await session.run(strings={PASSWORD_FIELD: secrets.token_hex(6)}, click=UNLOCK)
            said = " ".join(result.texts)
            out["attempts"] += 1
            if CHECKED in said:
                out["checked_at"].append(time.monotonic())
            elif REFUSED not in said:
                out["errors"].append(f"unexpected answer: {said[:100]}")

    await counted(session, guess, out, prefix="attacker ")


async def _owner(url: str, password: str, address: str, out: dict) -> None:
    session = StreamlitSession(url, page="train", headers={"X-Real-IP": address})

    async def unlock():
        await session.open()
        begin = time.perf_counter()
        result = await session.run(strings={PASSWORD_FIELD: password}, click=UNLOCK)
        seconds = time.perf_counter() - begin
        unlocked = "Start training" in result.buttons  # only an unlocked session is offered the new-job form
        out["owner"].append({"seconds": seconds, "unlocked": unlocked, "said": " ".join(result.texts)[:120]})

    await counted(session, unlock, out, prefix="owner ")


async def attack_against(url: str, password: str, *, attackers: int, addresses: int, minutes: float) -> dict:
    out = {"attempts": 0, "checked_at": [], "errors": [], "owner": []}
    start = time.monotonic()
    until = start + 60 * minutes
    sessions = [asyncio.create_task(_attacker(url, _address(i % addresses), until=until, out=out))
                for i in range(attackers)]
    owner_at = min(OWNER_EVERY_S, 60 * minutes) / 2
    while time.monotonic() + 5 < until:
        await asyncio.sleep(max(0.0, start + owner_at - time.monotonic()))
        await _owner(url, password, "203.0.113.7", out)  # TEST-NET-3: the owner's own connection
        owner_at += OWNER_EVERY_S
    await asyncio.gather(*sessions)
    checked = np.array(out["checked_at"]) - start
    windows = np.bincount((checked // WINDOW_S).astype(int), minlength=int(60 * minutes // WINDOW_S) + 1)
    steady = windows[int(60 // WINDOW_S):]  # after the first minute: the free typos are spent
    return {"attackers": attackers, "addresses": addresses, "minutes": minutes, "attempts": out["attempts"],
            "checked": int(len(checked)), "checked_first_minute": int(np.sum(checked < 60)),
            "max_checked_per_window_after_1_min": int(steady.max()) if len(steady) else 0,
            "checked_per_10_s_after_1_min": float(np.sum(checked >= 60) / max(1.0, (60 * minutes - 60) / WINDOW_S)),
            "owner": out["owner"], "errors": out["errors"][:5], "error_count": len(out["errors"])}


def password_attack(*, attackers: int = 20, addresses: int = 1, minutes: float = 7.0) -> dict:
    from aigc.settings import RUNS_ENV, TRAINING_ENV, TRAINING_PASSWORD_ENV, TRUSTED_PROXY_ENV

    password = secrets.token_urlsafe(12)
    root = Path(tempfile.mkdtemp(prefix="aigc-attack-runs-"))
    port = free_port()
    server = start_server(port=port, env={TRAINING_ENV: "password", TRAINING_PASSWORD_ENV: password,
                                          TRUSTED_PROXY_ENV: "1", RUNS_ENV: str(root)})
    url = f"http://127.0.0.1:{port}"

    async def main():
        await wait_healthy(url)
        return await attack_against(url, password, attackers=attackers, addresses=addresses, minutes=minutes)

    try:
        return run_coroutine(main)
    finally:
        stop_server(server)
        shutil.rmtree(root, ignore_errors=True)


def _forged_value(megabytes: float) -> str:
    payload = base64.b64encode(os.urandom(int(megabytes * 2**20 * 3 / 4))).decode()
    return json.dumps({"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": "data:image/png;base64," + payload},
                       "backgroundFit": None})


async def _forger(url: str, out: dict, under: str, over: str) -> None:
    session = StreamlitSession(url, page="draw")

    async def forge():
        canvas = (await session.open()).inputs["component"]
        for _ in range(FORGED_SENDS):
            session.last.inputs["component"] = canvas  # a page that refused the value may not redraw the canvas
            result = await session.run(strings={"component": under})
            # What the page says about this drawing: its short alerts (not the page's own explanations).
            out["said"].update(t[:160] for t in result.texts + result.errors if "drawing" in t.lower() and len(t) < 200)
        session.last.inputs["component"] = canvas
        try:
            await session.run(strings={"component": over}, timeout=20)
            out["over_limit_answered"] += 1
        except Exception as error:  # noqa: BLE001  (the server is expected to drop the connection)
            out["over_limit_refused"].add(type(error).__name__)

    await counted(session, forge, out, prefix="forger ")


def forged_canvases(*, sessions: int = 20, settle_s: float = SESSION_TTL_S + 15) -> dict:
    port = free_port()
    server = start_server(port=port)
    url = f"http://127.0.0.1:{port}"
    under, over = _forged_value(UNDER_LIMIT_MB), _forged_value(OVER_LIMIT_MB)

    async def main():
        await wait_healthy(url)
        sampler = Sampler(server.pid)
        warm = StreamlitSession(url, page="draw")
        await warm.open()
        await warm.close()
        await asyncio.to_thread(wait_idle, server.pid)  # the warm-up loads TensorFlow after the first page
        start_mb = sampler.rss_mb()
        sampler.start()
        out = {"said": set(), "over_limit_answered": 0, "over_limit_refused": set(), "errors": []}
        await asyncio.gather(*(_forger(url, out, under, over) for _ in range(sessions)))
        await asyncio.sleep(5)
        soon_mb = sampler.rss_mb()
        await asyncio.sleep(max(0.0, settle_s - 5))  # Streamlit keeps a closed session for reconnection for its TTL
        sampler.stop()
        return {"sessions": sessions, "under_limit_mb": UNDER_LIMIT_MB, "over_limit_mb": OVER_LIMIT_MB,
                "sends": FORGED_SENDS, "rss_start_mb": start_mb, "rss_peak_mb": sampler.peak_mb,
                "rss_5s_after_mb": soon_mb, "rss_end_mb": sampler.rss_mb(), "settle_s": settle_s,
                "said": sorted(out["said"]),
                "over_limit_answered": out["over_limit_answered"], "over_limit_refused": sorted(out["over_limit_refused"]),
                "errors": out["errors"][:5]}

    try:
        return run_coroutine(main)
    finally:
        stop_server(server)


def render_attack(result: dict) -> str:
    owner = result["owner"]
    worst = max((o["seconds"] for o in owner), default=float("nan"))
    lines = [f"password attack: {result['attackers']} sessions from {result['addresses']} address(es) for "
             f"{result['minutes']:g} min: {result['attempts']:,} attempts, {result['checked']} checked "
             f"({result['checked_first_minute']} in the first minute)",
             f"  after the first minute: {result['checked_per_10_s_after_1_min']:.2f} checked per 10 s, at most "
             f"{result['max_checked_per_window_after_1_min']} in any 10 s",
             f"  owner from another address: {sum(o['unlocked'] for o in owner)}/{len(owner)} unlocked at the first "
             f"try, slowest {worst:.2f} s from submit to unlocked"]
    if result["error_count"]:
        lines.append(f"  errors ({result['error_count']}): " + " | ".join(result["errors"]))
    return "\n".join(lines)


def render_canvas(result: dict) -> str:
    lines = [f"forged canvases: {result['sessions']} sessions x {result['sends']} values of {result['under_limit_mb']} "
             f"MB, then one of {result['over_limit_mb']} MB",
             f"  server RSS start {result['rss_start_mb']:.0f} MB, peak {result['rss_peak_mb']:.0f} MB, 5 s after they "
             f"closed {result['rss_5s_after_mb']:.0f} MB, {result['settle_s']:.0f} s after {result['rss_end_mb']:.0f} MB "
             f"(Streamlit keeps a closed session {SESSION_TTL_S} s for a reconnection)",
             f"  the page said: {' | '.join(result['said']) or '(nothing about the drawing)'}",
             f"  over the limit: {result['over_limit_answered']} answered, refused with "
             f"{', '.join(result['over_limit_refused']) or 'nothing'}"]
    if result["errors"]:
        lines.append("  errors: " + " | ".join(result["errors"]))
    return "\n".join(lines)
