"""Who may control training on a hosted server: the password form and its guessing limits."""
from __future__ import annotations

import time

import streamlit as st

from aigc.app import hosting

WRONG_PASSWORD_DELAY_S = 1.0


def authorised_ui(policy: hosting.Policy) -> bool:
    """The password form in password mode; True once this session typed the right password."""
    if st.session_state.get("_train_unlocked"):
        return True
    with st.form("train_password_form"):
        typed = st.text_input("Training password", type="password", key="train_password")
        submitted = st.form_submit_button("Unlock training")
    if submitted:
        if hosting.password_ok(typed, policy):
            st.session_state["_train_unlocked"] = True
            st.rerun()
        time.sleep(WRONG_PASSWORD_DELAY_S)  # slows guessing down
        st.error("Wrong password.")
    st.caption("Training is password-protected on this server; anyone may watch the current job and generate.")
    return False
