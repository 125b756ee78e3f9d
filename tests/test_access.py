"""The training password: one limiter per server process, per-client backoff, one ceiling for guessers, counts logged."""
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


def test_backoff_doubles_per_client_after_free_typos_and_is_capped():
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=1, max_delay_s=8, free_failures=2, guesser_interval_s=0, clock=clock)
    delays = []
    for _ in range(7):
        ok, message = limiter.attempt("wrong", POLICY, client="203.0.113.5")
        assert not ok and message == "Wrong password."
        delays.append(round(limiter.wait_s("203.0.113.5")))
        clock.now += limiter.wait_s("203.0.113.5")
    assert delays == [0, 0, 1, 2, 4, 8, 8]


def test_while_a_client_backs_off_not_even_its_right_password_is_checked():
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=5, free_failures=1, guesser_interval_s=0, clock=clock)
    assert limiter.attempt("typo", POLICY, client="a")[0] is False and limiter.wait_s("a") == 0
    assert limiter.attempt("wrong", POLICY, client="a")[0] is False
    ok, message = limiter.attempt(POLICY.password, POLICY, client="a")
    assert not ok and "try again in 5 s" in message
    clock.now += 5.01
    assert limiter.attempt(POLICY.password, POLICY, client="a") == (True, None)
    assert limiter.failures("a") == 0 and limiter.wait_s("a") == 0


def test_a_quiet_client_is_forgiven():
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=1, forget_s=100, clock=clock)
    for guess in "abc":
        limiter.attempt(guess, POLICY, client="a")
        clock.now += 20
    assert limiter.failures("a") == 3
    clock.now += 101
    limiter.attempt("d", POLICY, client="a")
    assert limiter.failures("a") == 1


def _attack(limiter, clock, *, sessions: int, seconds: float, client: str, step: float = 0.5):
    """`sessions` threads of one client guess in lockstep on the fake clock for `seconds` (fake) seconds."""
    stop = clock.now + seconds
    rounds = threading.Barrier(sessions, action=lambda: setattr(clock, "now", clock.now + step))

    def guesser(index):
        while clock.now < stop:
            limiter.attempt(f"guess-{index}", POLICY, client=client)
            rounds.wait(timeout=60)

    threads = [threading.Thread(target=guesser, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_twenty_attacking_sessions_cannot_lock_the_owner_out():
    """Before: 10 checked guesses locked the form for 15 minutes for everyone, the owner included (29/29 refused).

    20 sessions guess for 7 (fake) minutes; the owner, from another client, is let in at the first try.
    """
    clock = FakeClock()
    limiter = PasswordLimiter(clock=clock)
    _attack(limiter, clock, sessions=20, seconds=420, client="198.51.100.66")
    assert limiter.checked <= 2 + 420 / 10, f"{limiter.checked} attacker guesses checked in 7 minutes"
    assert limiter.attempt(POLICY.password, POLICY, client="192.0.2.10") == (True, None)


def test_the_owner_after_a_typo_still_gets_in_while_attackers_guess():
    clock = FakeClock()
    limiter = PasswordLimiter(clock=clock)
    _attack(limiter, clock, sessions=5, seconds=60, client="198.51.100.66")
    assert limiter.attempt("typo", POLICY, client="192.0.2.10")[0] is False
    assert limiter.wait_s("192.0.2.10") == 0, "a typo is free, whatever the attackers do"
    assert limiter.attempt(POLICY.password, POLICY, client="192.0.2.10") == (True, None)


def test_attackers_rotating_sessions_share_one_ceiling():
    """Clients past their free typos share one check per interval, however many there are."""
    clock = FakeClock()
    limiter = PasswordLimiter(base_s=0, guesser_interval_s=10, clock=clock)
    for client in ("a", "b", "c"):
        for _ in range(3):
            limiter.attempt("x", POLICY, client=client)
    checked = limiter.checked
    for client in ("a", "b", "c"):
        assert "try again in" in limiter.attempt("x", POLICY, client=client)[1]
    assert limiter.checked == checked
    clock.now += 10
    assert limiter.attempt("x", POLICY, client="b")[1] == "Wrong password."
    assert "try again in" in limiter.attempt("x", POLICY, client="c")[1]


def test_failures_are_logged_by_count_and_client_never_the_password(caplog):
    limiter = PasswordLimiter(base_s=0)
    with caplog.at_level(logging.WARNING, logger="aigc.serve.limiter"):
        limiter.attempt("hunter2-typed-secret", POLICY, client="203.0.113.7")
        limiter.attempt("another-typed-secret", POLICY, client="203.0.113.7")
    text = caplog.text
    assert "2 in a row" in text and "203.0.113.7" in text
    assert "typed-secret" not in text and POLICY.password not in text


def test_the_client_table_is_bounded():
    limiter = PasswordLimiter(max_clients=50)
    for index in range(500):
        limiter.attempt("x", POLICY, client=f"10.0.{index // 256}.{index % 256}")
    assert len(limiter._clients) == 50


def _form_app():
    import streamlit as st

    from aigc.app.pages.train import authorised_ui
    from aigc.serve.hosting import Policy

    if authorised_ui(Policy(training="password", password="correct horse battery"), client="local"):
        st.success("unlocked")


def _submit(app: AppTest, password: str) -> AppTest:
    app.text_input(key="train_password").input(password)
    return app.button[0].click().run()


def test_sessions_of_one_client_share_its_backoff(monkeypatch):
    """Parallel sessions do not multiply a client's guesses: session B of the same client waits after A's."""
    monkeypatch.setattr(limiter_module.PROCESS_LIMITER, "base_s", 30.0)
    limiter_module.PROCESS_LIMITER.reset()
    first, second = AppTest.from_function(_form_app, default_timeout=30), AppTest.from_function(_form_app,
                                                                                                default_timeout=30)
    first.run(), second.run()
    real_sleep, long_sleeps = time.sleep, []  # Streamlit's own waits are milliseconds; a backoff sleep is seconds
    monkeypatch.setattr(time, "sleep", lambda s: long_sleeps.append(s) if s >= 0.5 else real_sleep(s))
    for guess in ("typo", "guess", "another"):
        assert "Wrong password" in _submit(first, guess).error[0].value
    assert not long_sleeps, "the session itself never sleeps"
    second = _submit(second, "correct horse battery")
    assert not second.success and "try again in" in second.error[0].value
    limiter_module.PROCESS_LIMITER.reset()
    second = _submit(second, "correct horse battery")
    assert second.success[0].value == "unlocked"


@pytest.fixture(autouse=True)
def _fresh_process_limiter():
    """Tests that use the process limiter leave it clean for the rest of the suite."""
    yield
    limiter_module.PROCESS_LIMITER.reset()
