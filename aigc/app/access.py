"""Who may control training on a hosted server: the password form and its server-wide guessing limit."""
from __future__ import annotations

import streamlit as st

from aigc.app import hosting
from aigc.app.limiter import PROCESS_LIMITER, PasswordLimiter


def authorised_ui(policy: hosting.Policy, *, limiter: PasswordLimiter = PROCESS_LIMITER) -> bool:
    """The password form in password mode; True once this session typed the right password."""
    if st.session_state.get("_train_unlocked"):
        return True
    with st.form("train_password_form"):
        typed = st.text_input("Training password", type="password", key="train_password")
        submitted = st.form_submit_button("Unlock training")
    if submitted:
        # Counted across every session of this server: parallel sessions share one backoff and lockout.
        ok, message = limiter.attempt(typed, policy)
        if ok:
            st.session_state["_train_unlocked"] = True
            st.rerun()
        st.error(message)
    st.caption("Training is password-protected on this server; anyone may watch the current job and generate.")
    return False
