"""The training password: one limiter per server process (backoff, lockout), the count logged, never the password."""
from __future__ import annotations

import logging
import threading
import time

import pytest
from streamlit.testing.v1 import AppTest

from aigc.serve import limiter as limiter_module
from aigc.serve.hosting import Policy
from aigc.serve.limiter import PasswordLimiter

POLICY = Policy(training="password", password="correct horse battery")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_s(limiter: PasswordLimiter, clock: FakeClock) -> float:
    """Seconds until the limiter checks a guess again (its own state, read by the test only)."""
    return max(0.0, limiter._blocked_until - clock.now)


def test_backoff_doubles_then_locks_out():
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=1, max_delay_s=8, lockout_after=6, lockout_s=600, clock=clock)
    delays, messages = [], []
    for _ in range(6):
        ok, message = limiter.attempt("wrong", POLICY)
        assert not ok and "Wrong password" in message
        delays.append(round(wait_s(limiter, clock)))
        messages.append(message)
        clock.now += wait_s(limiter, clock)
    assert delays == [0, 1, 2, 4, 8, 600]  # the first wrong guess is a free typo
    assert "locked for 10 min" in messages[-1] and "locked" not in messages[-2]


def test_while_backing_off_not_even_the_right_password_is_checked():
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=5, clock=clock)
    assert limiter.attempt("typo", POLICY)[0] is False and wait_s(limiter, clock) == 0
    assert limiter.attempt("wrong", POLICY)[0] is False
    ok, message = limiter.attempt(POLICY.password, POLICY)
    assert not ok and "try again in 5 s" in message
    clock.now += 5.01
    assert limiter.attempt(POLICY.password, POLICY) == (True, None)
    assert limiter.failures == 0 and wait_s(limiter, clock) == 0


def test_a_quiet_lockout_window_forgives_old_failures():
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=1, lockout_after=4, lockout_s=100, clock=clock)
    for guess in "abc":
        limiter.attempt(guess, POLICY)
        clock.now += 2.5
    assert limiter.failures == 3
    clock.now += 101
    limiter.attempt("d", POLICY)
    assert limiter.failures == 1 and wait_s(limiter, clock) == 0


def test_parallel_sessions_share_one_limit(monkeypatch):
    """Issue 11: 20 parallel sessions made 6.6 guesses/s against a per-session 1 s sleep.

    20 threads guess in lockstep on a fake clock that moves 10 ms per round, for one (fake) second.
    """
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=0.2, max_delay_s=10, clock=clock)
    checked, original = [], limiter_module.password_ok
    monkeypatch.setattr(limiter_module, "password_ok", lambda given, policy: checked.append(given) or original(given,
                                                                                                              policy))
    stop = clock.now + 1.0
    rounds = threading.Barrier(20, action=lambda: setattr(clock, "now", clock.now + 0.01))

    def guesser(index):
        while clock.now < stop:
            limiter.attempt(f"guess-{index}", POLICY)
            rounds.wait(timeout=30)

    threads = [threading.Thread(target=guesser, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # A free typo, then 0.2 + 0.4 + 0.8 s of backoff: 4 guesses checked in 1 s by every session together.
    assert len(checked) == 4, len(checked)


def test_failures_are_logged_by_count_never_the_password(caplog):
    limiter = PasswordLimiter(base_s=0)
    with caplog.at_level(logging.WARNING, logger="aigc.serve.limiter"):
        limiter.attempt("hunter2-typed-secret", POLICY)
        limiter.attempt("another-typed-secret", POLICY)
    text = caplog.text
    assert "2 in a row" in text
    assert "typed-secret" not in text and POLICY.password not in text


def _form_app():
    import streamlit as st

    from aigc.app.pages.train import authorised_ui
    from aigc.serve.hosting import Policy

    if authorised_ui(Policy(training="password", password="correct horse battery")):
        st.success("unlocked")


def _submit(app: AppTest, password: str) -> AppTest:
    app.text_input(key="train_password").input(password)
    return app.button[0].click().run()


def test_a_wrong_guess_in_one_session_slows_every_session(monkeypatch):
    """The limiter is the server's: session B waits after session A's wrong guess (before: per session only)."""
    monkeypatch.setattr(limiter_module.PROCESS_LIMITER, "base_s", 30.0)
    limiter_module.PROCESS_LIMITER.reset()
    first, second = AppTest.from_function(_form_app, default_timeout=30), AppTest.from_function(_form_app,
                                                                                                default_timeout=30)
    first.run(), second.run()
    real_sleep, long_sleeps = time.sleep, []  # Streamlit's own waits are milliseconds; a backoff sleep is seconds
    monkeypatch.setattr(time, "sleep", lambda s: long_sleeps.append(s) if s >= 0.5 else real_sleep(s))
    assert "Wrong password" in _submit(first, "typo").error[0].value
    assert "Wrong password" in _submit(first, "guess").error[0].value
    assert not long_sleeps, "the session itself no longer sleeps"
    second = _submit(second, "correct horse battery")
    assert not second.success and "try again in" in second.error[0].value
    monkeypatch.setattr(limiter_module.PROCESS_LIMITER, "_blocked_until", 0.0)
    second = _submit(second, "correct horse battery")
    assert second.success[0].value == "unlocked"


@pytest.fixture(autouse=True)
def _fresh_process_limiter():
    """Tests that use the process limiter leave it clean for the rest of the suite."""
    yield
    limiter_module.PROCESS_LIMITER.reset()
