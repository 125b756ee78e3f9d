"""The training password's guess limiter: one per server process, shared by every session.

A per-session delay does nothing against many parallel sessions (20 websocket sessions made
6.6 guesses/s against a 1 s sleep each), so failures are counted across the whole process:
after the first (free: a typo) each wrong guess doubles the wait before the next check
anywhere on the server, and a run of LOCKOUT_AFTER wrong guesses locks the form for LOCKOUT_S. It lives in a plain module object,
never in st.cache_resource, because a visitor's clear-cache message empties those.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from aigc.serve.hosting import Policy, password_ok
from aigc.text import duration

LOG = logging.getLogger("aigc.serve.limiter")
BASE_DELAY_S = 1.0
MAX_DELAY_S = 60.0
LOCKOUT_AFTER = 10
LOCKOUT_S = 900.0
FREE_FAILURES = 1  # a single typo costs nothing


class PasswordLimiter:
    """Counts wrong passwords across sessions; exponential backoff, then a lockout window."""

    def __init__(self, *, base_s: float = BASE_DELAY_S, max_delay_s: float = MAX_DELAY_S,
                 lockout_after: int = LOCKOUT_AFTER, lockout_s: float = LOCKOUT_S,
                 free_failures: int = FREE_FAILURES, clock: Callable[[], float] = time.monotonic):
        self.base_s, self.max_delay_s, self.free_failures = base_s, max_delay_s, free_failures
        self.lockout_after, self.lockout_s = lockout_after, lockout_s
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every failure (tests; an operator restarting the server does the same)."""
        self._failures = 0
        self._last_failure = 0.0
        self._blocked_until = 0.0

    @property
    def failures(self) -> int:
        """Wrong guesses in a row across every session (forgotten after a quiet lockout window)."""
        return self._failures

    def attempt(self, given, policy: Policy) -> tuple[bool, str | None]:
        """(True, None) for the right password; else (False, a message for the visitor)."""
        with self._lock:  # one check at a time on the whole server
            now = self._clock()
            if self._failures and now - self._last_failure > self.lockout_s:
                self._failures = 0  # a quiet window forgives old mistakes
            wait = self._blocked_until - now
            if wait > 0:
                return False, f"Too many wrong passwords on this server; try again in {duration(wait, round_up=True)}."
            if password_ok(given, policy):
                self._failures, self._blocked_until = 0, 0.0
                return True, None
            self._failures += 1
            self._last_failure = now
            delay = self._delay(self._failures)
            self._blocked_until = now + delay
        # The count only: never the password, never what was typed.
        LOG.warning("training password: wrong guess, %d in a row across sessions; next check in %.0f s",
                    self._failures, delay)
        if delay >= self.lockout_s:
            return False, f"Wrong password. Training is locked for {duration(delay, round_up=True)} after repeated wrong passwords."
        return False, "Wrong password."

    def _delay(self, failures: int) -> float:
        if failures >= self.lockout_after:
            return self.lockout_s
        if failures <= self.free_failures:
            return 0.0
        return min(self.max_delay_s, self.base_s * 2 ** (failures - self.free_failures - 1))


PROCESS_LIMITER = PasswordLimiter()  # the server process's one limiter (every session shares it)
