"""The remembered training unlock: a signed, expiring token bound to a client, the password and the server secret."""
from __future__ import annotations

import logging
import os
import stat
import threading

import pytest
from streamlit.testing.v1 import AppTest

from aigc import settings
from aigc.serve import limiter as limiter_module
from aigc.serve import unlock

CLIENT, PASSWORD, NOW = "203.0.113.7", "correct horse battery", 1_800_000_000.0


@pytest.fixture(autouse=True)
def runs_root(tmp_path, monkeypatch):
    """A fresh runs root and no $AIGC_SECRET, with the per-process secret cache emptied before and after."""
    root = tmp_path / "runs"
    monkeypatch.setenv(settings.RUNS_ENV, str(root))
    monkeypatch.delenv(settings.SECRET_ENV, raising=False)
    unlock._FILE_SECRETS.clear()
    yield root
    unlock._FILE_SECRETS.clear()
    limiter_module.PROCESS_LIMITER.reset()


def test_a_token_round_trips_for_its_client_until_it_expires():
    token = unlock.mint(CLIENT, PASSWORD, now=NOW)
    assert len(token) < unlock.MAX_TOKEN_CHARS and unlock.COOKIE not in token
    assert unlock.check(token, CLIENT, PASSWORD, now=NOW)
    assert unlock.check(token, CLIENT, PASSWORD, now=NOW + unlock.LIFETIME_S - 1)
    assert not unlock.check(token, CLIENT, PASSWORD, now=NOW + unlock.LIFETIME_S)
    assert not unlock.check(token, CLIENT, PASSWORD, now=NOW + 10 * unlock.LIFETIME_S)
    assert unlock.LIFETIME_S == 12 * 3600


def test_two_tokens_differ_and_the_real_clock_works():
    first, second = unlock.mint(CLIENT, PASSWORD), unlock.mint(CLIENT, PASSWORD)
    assert first != second  # a random nonce each
    assert unlock.check(first, CLIENT, PASSWORD) and unlock.check(second, CLIENT, PASSWORD)


def test_another_client_password_or_secret_is_refused(monkeypatch):
    token = unlock.mint(CLIENT, PASSWORD, now=NOW)
    assert not unlock.check(token, "203.0.113.8", PASSWORD, now=NOW)
    assert not unlock.check(token, CLIENT, PASSWORD + " ", now=NOW), "a new password voids every token"
    assert not unlock.check(token, CLIENT, "", now=NOW)
    monkeypatch.setenv(settings.SECRET_ENV, "another server's secret")
    assert not unlock.check(token, CLIENT, PASSWORD, now=NOW)
    signed = unlock.mint(CLIENT, PASSWORD, now=NOW)
    assert unlock.check(signed, CLIENT, PASSWORD, now=NOW)
    monkeypatch.setenv(settings.SECRET_ENV, "a third secret")
    assert not unlock.check(signed, CLIENT, PASSWORD, now=NOW)


def test_the_key_is_not_the_password_alone(monkeypatch):
    """Two servers with one password but their own secrets mint tokens that neither accepts from the other."""
    monkeypatch.setenv(settings.SECRET_ENV, "server A")
    token = unlock.mint(CLIENT, PASSWORD, now=NOW)
    monkeypatch.setenv(settings.SECRET_ENV, "server B")
    assert not unlock.check(token, CLIENT, PASSWORD, now=NOW)


def _tampered(token: str) -> list[str]:
    version, expiry, nonce, mac = token.split(".")
    flip = {"0": "1", "1": "0"}
    other = lambda text, at: text[:at] + flip.get(text[at], "0") + text[at + 1:]  # noqa: E731
    later = f"{int(expiry) + 3600:010d}"
    return [f"2.{expiry}.{nonce}.{mac}", f"{version}.{later}.{nonce}.{mac}",
            f"{version}.{expiry}.{other(nonce, 0)}.{mac}", f"{version}.{expiry}.{nonce}.{other(mac, 63)}", f"{version}.{expiry}.{nonce}.{mac.upper()}",
            f"{version}.{expiry}.{nonce}.{mac}.", f" {token}", f"{token}\n", f"{version}.{expiry}.{nonce}{mac}",
            f"{version}.+{expiry[1:]}.{nonce}.{mac}", f"{version}.{expiry}.{nonce}.{mac[:-1]}"]


def test_every_tampered_field_is_refused():
    token = unlock.mint(CLIENT, PASSWORD, now=NOW)
    for forged in _tampered(token):
        assert not unlock.check(forged, CLIENT, PASSWORD, now=NOW), forged


def test_a_token_longer_lived_than_any_minted_is_refused(monkeypatch):
    """Even with the right MAC (here: forged with the real key), an expiry beyond the lifetime is refused."""
    expiry, nonce = f"{int(NOW) + 3 * unlock.LIFETIME_S:010d}", "ab" * 16
    forged = f"1.{expiry}.{nonce}.{unlock._mac(PASSWORD, expiry, nonce, CLIENT)}"
    assert not unlock.check(forged, CLIENT, PASSWORD, now=NOW)
    assert unlock.check(forged, CLIENT, PASSWORD, now=NOW + 2 * unlock.LIFETIME_S)  # the MAC itself was right


@pytest.mark.parametrize("garbage", [None, "", 0, 1.5, b"1.2.3.4", ["1"], {"a": 1}, object(), "1...", "1.2.3.4",
                                     "x" * 10_000_000, "1." + "9" * 10 + "." + "a" * 32 + "." + "b" * 5000,
                                     "ą" * 300, "\x00" * 50, "1.0000000000." + "0" * 32 + "." + "0" * 64])
def test_garbage_never_unlocks_and_never_raises(garbage):
    assert unlock.check(garbage, CLIENT, PASSWORD, now=NOW) is False


def test_check_never_raises_even_when_the_secret_cannot_be_had(monkeypatch):
    monkeypatch.setattr(unlock, "server_secret", lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert unlock.check("1.1800000001." + "0" * 32 + "." + "0" * 64, CLIENT, PASSWORD, now=NOW) is False


def test_the_secret_file_is_made_once_with_mode_0600_and_reused(runs_root):
    token = unlock.mint(CLIENT, PASSWORD, now=NOW)
    path = runs_root / unlock.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_bytes()
    assert len(first) == unlock.SECRET_BYTES
    assert [p.name for p in runs_root.iterdir()] == [unlock.SECRET_FILE], "no temporary file is left behind"
    unlock._FILE_SECRETS.clear()  # another replica (or a restart) on the same runs volume
    assert unlock.check(token, CLIENT, PASSWORD, now=NOW)
    assert path.read_bytes() == first


def test_the_secret_file_is_made_0600_under_a_permissive_umask(runs_root):
    old = os.umask(0)
    try:
        unlock.server_secret()
    finally:
        os.umask(old)
    assert stat.S_IMODE((runs_root / unlock.SECRET_FILE).stat().st_mode) == 0o600


def test_replicas_racing_for_the_secret_file_agree(runs_root):
    """Many first uses at once (threads standing in for replicas): one file, and every one reads the same bytes."""
    seen, barrier = [], threading.Barrier(8)

    def first_use():
        barrier.wait()
        seen.append(unlock._file_secret(runs_root / unlock.SECRET_FILE))

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1 and seen[0] == (runs_root / unlock.SECRET_FILE).read_bytes()
    assert [p.name for p in runs_root.iterdir()] == [unlock.SECRET_FILE]


def test_a_secret_file_readable_by_others_is_tightened(runs_root, caplog):
    runs_root.mkdir()
    (runs_root / unlock.SECRET_FILE).write_bytes(b"s" * 40)
    os.chmod(runs_root / unlock.SECRET_FILE, 0o644)
    with caplog.at_level(logging.WARNING, logger="aigc.serve.unlock"):
        assert unlock.server_secret() == b"s" * 40
    assert stat.S_IMODE((runs_root / unlock.SECRET_FILE).stat().st_mode) == 0o600
    assert "readable by others" in caplog.text


def test_a_short_secret_file_is_not_used(runs_root, caplog):
    runs_root.mkdir()
    (runs_root / unlock.SECRET_FILE).write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="aigc.serve.unlock"):
        assert unlock.server_secret() == unlock._PROCESS_SECRET
    assert "fewer than" in caplog.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_an_unwritable_runs_root_falls_back_to_a_process_secret(runs_root, caplog):
    runs_root.mkdir()
    os.chmod(runs_root, 0o500)
    try:
        with caplog.at_level(logging.WARNING, logger="aigc.serve.unlock"):
            token = unlock.mint(CLIENT, PASSWORD, now=NOW)
        assert unlock.check(token, CLIENT, PASSWORD, now=NOW)
        assert unlock.server_secret() == unlock._PROCESS_SECRET
        assert "cannot read or create" in caplog.text and str(runs_root) not in caplog.text
    finally:
        os.chmod(runs_root, 0o700)


def test_a_runs_root_under_a_file_falls_back_to_a_process_secret(runs_root, monkeypatch, caplog):
    """Works as root too (where permissions do not stop a write): the runs root's parent is a plain file."""
    runs_root.parent.joinpath("blocker").write_text("not a folder")
    monkeypatch.setenv(settings.RUNS_ENV, str(runs_root.parent / "blocker" / "runs"))
    with caplog.at_level(logging.WARNING, logger="aigc.serve.unlock"):
        token = unlock.mint(CLIENT, PASSWORD, now=NOW)
    assert unlock.server_secret() == unlock._PROCESS_SECRET
    assert unlock.check(token, CLIENT, PASSWORD, now=NOW)
    assert "cannot read or create" in caplog.text


def test_aigc_secret_wins_and_writes_no_file(runs_root, monkeypatch):
    monkeypatch.setenv(settings.SECRET_ENV, "a long random operator secret")
    assert unlock.server_secret() == b"a long random operator secret"
    assert unlock.check(unlock.mint(CLIENT, PASSWORD, now=NOW), CLIENT, PASSWORD, now=NOW)
    assert not runs_root.exists()


# The Train page's authorised_ui (AppTest cannot send cookies, so the page is handed them as a mapping).

def _form_app(cookie=None):
    import streamlit as st

    from aigc.app.password import authorised_ui
    from aigc.serve.hosting import Policy
    from aigc.serve.unlock import COOKIE

    cookies = {} if cookie is None else {COOKIE: cookie}
    if authorised_ui(Policy(training="password", password="correct horse battery"), client="local", cookies=cookies):
        st.success("unlocked")


def _cookie_scripts(app: AppTest) -> list[str]:
    """The html of every component iframe the last run put in the page."""
    return [element.proto.srcdoc for element in app.get("iframe")]


def _app(cookie=None) -> AppTest:
    return AppTest.from_function(_form_app, kwargs={"cookie": cookie}, default_timeout=30).run()


def test_a_valid_cookie_unlocks_without_the_form_and_without_a_guess():
    """Before: a reload (a new session) showed the password form again, whatever the browser kept."""
    checked = limiter_module.PROCESS_LIMITER.checked
    app = _app(unlock.mint("local", PASSWORD))
    assert app.success[0].value == "unlocked"
    assert not app.text_input and not _cookie_scripts(app), "no form, and the token is not sent back"
    assert any("remembered in this browser for 12 hours" in c.value for c in app.caption)
    assert limiter_module.PROCESS_LIMITER.checked == checked


@pytest.mark.parametrize("cookie", ["forged", "1.9999999999." + "0" * 32 + "." + "0" * 64, "x" * 5000])
def test_a_forged_cookie_shows_the_form(cookie):
    app = _app(cookie)
    assert not app.success and app.text_input(key="train_password")


def test_another_clients_or_an_old_passwords_cookie_shows_the_form():
    for token in (unlock.mint("203.0.113.9", PASSWORD), unlock.mint("local", "the old password")):
        assert not _app(token).success


def test_the_right_password_puts_the_token_in_the_page_once():
    app = _app()
    assert not _cookie_scripts(app), "no token before the password"
    app.text_input(key="train_password").input("wrong")
    app = app.button[0].click().run()
    assert not _cookie_scripts(app), "no token after a wrong password"
    app.text_input(key="train_password").input(PASSWORD)
    app = app.button[0].click().run()
    assert app.success[0].value == "unlocked"
    [script] = _cookie_scripts(app)
    token = script.split('"')[3]
    assert unlock.check(token, "local", PASSWORD)
    assert "window.parent.document" in script and "max-age=43200" in script and "SameSite=Strict" in script
    assert not _cookie_scripts(app.run()), "the next run no longer carries the token"


def test_lock_training_forgets_the_unlock_here_even_with_the_cookie_still_sent():
    app = _app(unlock.mint("local", PASSWORD))
    app = app.button(key="train_lock").click().run()
    assert not app.success and app.text_input(key="train_password")
    [script] = _cookie_scripts(app)
    assert "max-age=0" in script and '""' in script, "the cookie is deleted in the browser"
    app = app.run()
    assert not app.success and not _cookie_scripts(app), "locked for this session; the delete was sent once"
    app.text_input(key="train_password").input(PASSWORD)
    assert app.button[0].click().run().success[0].value == "unlocked", "the password unlocks again"
