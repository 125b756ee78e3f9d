"""The Train page's password gate: the form, the unlock this browser remembers, and Lock training.

In password mode the right password unlocks the session; it also puts one signed token
(aigc/serve/unlock.py) in that session's page, which a script stores as a cookie, so a reload or a
second tab of the same browser is unlocked without the form for unlock.LIFETIME_S. Lock training
deletes the cookie and locks the session (for shared computers).
"""
from __future__ import annotations

import json
from typing import Mapping

import streamlit as st
import streamlit.components.v1 as components

from aigc.serve import hosting, unlock
from aigc.serve.limiter import PROCESS_LIMITER, PasswordLimiter

UNLOCKED = "_train_unlocked"  # this session may train
NEW_TOKEN = "_train_unlock_token"  # a token minted by the right password, put in the page on the next run only
LOCKED_HERE = "_train_locked_here"  # Lock training was clicked: this session ignores the cookie it connected with
FORGET_COOKIE = "_train_forget_cookie"  # delete the cookie in the browser on the next run
REMEMBERED_NOTE = (f"Training unlocked: remembered in this browser for {unlock.LIFETIME_S // 3600} hours "
                   "(Lock training forgets it, e.g. on a shared computer).")


def authorised_ui(policy: hosting.Policy, *, client: str, limiter: PasswordLimiter = PROCESS_LIMITER,
                  cookies: Mapping[str, str] | None = None) -> bool:
    """The password form in password mode; True once this session typed the right password (guesses count per client)
    or its browser sent a valid remembered unlock (serve/unlock.py; cookies: st.context.cookies unless given)."""
    state = st.session_state
    if not state.get(UNLOCKED) and not state.get(LOCKED_HERE) and unlock.check(
            _unlock_cookie(cookies), client, policy.password):
        state[UNLOCKED] = True  # a valid cookie is not a guess: the limiter never sees it
    if state.get(UNLOCKED):
        _unlocked_ui(state.pop(NEW_TOKEN, None))
        return True
    if state.pop(FORGET_COOKIE, False):
        _set_unlock_cookie("", 0)
    with st.form("train_password_form"):
        typed = st.text_input("Training password", type="password", key="train_password")
        submitted = st.form_submit_button("Unlock training")
    if submitted:
        # Counted per client across every session: parallel sessions of one client share its backoff.
        ok, message = limiter.attempt(typed, policy, client=client)
        if ok:
            state[UNLOCKED], state[NEW_TOKEN] = True, unlock.mint(client, policy.password)
            state.pop(LOCKED_HERE, None)
            st.rerun()
        st.error(message)
    st.caption("Training is password-protected on this server; anyone may watch the current job and generate.")
    return False


def _unlock_cookie(cookies: Mapping[str, str] | None) -> str | None:
    """The remembered unlock this session's browser sent with its websocket handshake (None when it sent none)."""
    value = (st.context.cookies if cookies is None else cookies).get(unlock.COOKIE)
    return value if isinstance(value, str) else None


def _unlocked_ui(new_token: str | None) -> None:
    """The note that this browser remembers the unlock, and Lock training (forget it here: shared computers)."""
    note, button = st.columns([5, 1], vertical_alignment="center")
    with note:
        st.caption(REMEMBERED_NOTE)
        if new_token:  # only in the run right after the right password, and only to this session
            _set_unlock_cookie(new_token, unlock.LIFETIME_S)
    if button.button("Lock training", key="train_lock", help="Forget the password in this browser"):
        st.session_state[UNLOCKED] = False
        st.session_state[LOCKED_HERE] = True  # this session's handshake still carries the cookie: ignore it
        st.session_state[FORGET_COOKIE] = True
        st.rerun()


def _set_unlock_cookie(value: str, max_age: int) -> None:
    """Store (or, with max_age 0, delete) the unlock cookie on the app's origin, from the browser.

    Streamlit cannot set cookies from the server. The component's script runs in a same-origin about:srcdoc
    iframe; Chromium lets its own document.cookie reach the app's origin, but the HTML standard makes an
    about: document cookie-averse, so the script writes the parent's (the app's) document.cookie.
    """
    script = (f"<script>const d = window.parent.document; d.cookie = {json.dumps(unlock.COOKIE)} + '=' + "
              f"{json.dumps(value)} + '; path=/; max-age={int(max_age)}; SameSite=Strict' + "
              "(window.parent.location.protocol === 'https:' ? '; Secure' : '');</script>")
    components.html(script, height=0)
