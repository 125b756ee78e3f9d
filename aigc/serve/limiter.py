"""The training password's guess limiter: one per server process, counting per client.

Each client (its connection's address, or the address a trusted proxy saw: serve/trust.py) has
its own backoff: the first FREE_FAILURES wrong guesses cost nothing (typos), then each doubles the
wait before that client's next check, up to MAX_DELAY_S. Clients past their free typos also share
a server-wide ceiling: at most one of their guesses is checked per GUESSER_INTERVAL_S, however
many sessions they use. A client that has not been guessing is never slowed by anyone else, so
attackers cannot lock the owner out. Only counts are logged, per client, never
what was typed. The limiter is a plain module object: a visitor's clear-cache message cannot reset it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from aigc.serve.hosting import Policy, password_ok
from aigc.text import duration

LOG = logging.getLogger("aigc.serve.limiter")
BASE_DELAY_S = 1.0
MAX_DELAY_S = 900.0  # a client's wait never grows past 15 minutes
FREE_FAILURES = 2  # typos cost nothing
GUESSER_INTERVAL_S = 10.0  # all clients that guessed wrong together: one check per this many seconds
FORGET_S = 3600.0  # a client quiet this long starts afresh
MAX_CLIENTS = 10_000  # clients remembered; the least recently seen are forgotten beyond it


@dataclass
class _Client:
    failures: int = 0
    blocked_until: float = 0.0
    last_seen: float = 0.0


class PasswordLimiter:
    """Counts wrong passwords per client; exponential backoff per client plus one ceiling for all guessers."""

    def __init__(self, *, base_s: float = BASE_DELAY_S, max_delay_s: float = MAX_DELAY_S,
                 free_failures: int = FREE_FAILURES, guesser_interval_s: float = GUESSER_INTERVAL_S,
                 forget_s: float = FORGET_S, max_clients: int = MAX_CLIENTS,
                 clock: Callable[[], float] = time.monotonic):
        self.base_s, self.max_delay_s, self.free_failures = base_s, max_delay_s, free_failures
        self.guesser_interval_s, self.forget_s, self.max_clients = guesser_interval_s, forget_s, max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every client (tests; an operator restarting the server does the same)."""
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._next_guesser_check = 0.0
        self.checked = 0  # guesses compared with the password (tests and the bench count them)

    def failures(self, client: str = "local") -> int:
        """Wrong guesses in a row from one client."""
        entry = self._clients.get(client)
        return entry.failures if entry else 0

    def wait_s(self, client: str = "local") -> float:
        """Seconds before a guess from this client is checked again (0: now)."""
        with self._lock:
            now = self._clock()
            entry = self._clients.get(client)
            if entry is None or not entry.failures:
                return 0.0
            ceiling = self._next_guesser_check - now if entry.failures >= self.free_failures else 0.0
            return max(0.0, entry.blocked_until - now, ceiling)

    def attempt(self, given, policy: Policy, *, client: str = "local") -> tuple[bool, str | None]:
        """(True, None) for the right password; else (False, a message for this visitor)."""
        client = str(client)[:64]
        with self._lock:
            now = self._clock()
            entry = self._entry(client, now)
            if entry.failures:  # its own backoff; past the free typos, also the ceiling shared by every guesser
                ceiling = self._next_guesser_check - now if entry.failures >= self.free_failures else 0.0
                wait = max(entry.blocked_until - now, ceiling)
                if wait > 0:
                    return False, f"Too many wrong passwords from your connection; try again in " \
                                  f"{duration(wait, round_up=True)}."
            self.checked += 1
            if password_ok(given, policy):
                self._clients.pop(client, None)
                return True, None
            entry.failures += 1
            delay = self._delay(entry.failures)
            entry.blocked_until = now + delay
            if entry.failures > self.free_failures:
                self._next_guesser_check = max(self._next_guesser_check, now + self.guesser_interval_s)
            guessing = sum(1 for other in self._clients.values() if other.failures > self.free_failures)
        # Counts and the client's address only: never the password, never what was typed.
        LOG.warning("training password: wrong guess from %s, %d in a row; its next check in %.0f s; "
                    "%d client(s) guessing", client, entry.failures, delay, guessing)
        return False, "Wrong password."

    def _entry(self, client: str, now: float) -> _Client:
        entry = self._clients.get(client)
        if entry is None or now - entry.last_seen > self.forget_s:
            entry = self._clients[client] = _Client()
        entry.last_seen = now
        self._clients.move_to_end(client)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return entry

    def _delay(self, failures: int) -> float:
        if failures <= self.free_failures:
            return 0.0
        return min(self.max_delay_s, self.base_s * 2 ** (failures - self.free_failures - 1))


PROCESS_LIMITER = PasswordLimiter()  # the server process's one limiter (every session shares it)
