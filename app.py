"""AIGC digits: the Streamlit dashboard. `streamlit run app.py`

UI only: the engine lives in aigc/ (generation, the trainer, the run-directory protocol).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the server log

import streamlit as st  # noqa: E402

from aigc.app import hosting  # noqa: E402
from aigc.app.common import (freeze_startup_heap, generator_sidebar_ui, guarded, keep_keras_session,  # noqa: E402
                             no_generator_ui)
from aigc.app.generate_explore import generator_from_query  # noqa: E402

TITLE = "AIGC digits"
VIEWS = {"generate": "Generate", "write": "Write a number", "draw": "Draw a digit", "train": "Train", "model": "Model"}


def pick_view(policy: hosting.Policy) -> str:
    """Sidebar view chooser, seeded from ?view=; Train is hidden when training is off."""
    views = [key for key in VIEWS if key != "train" or policy.training_visible]
    # A plain session key remembers the view even if Streamlit drops the radio's widget state.
    remembered = st.session_state.get("_view") or st.query_params.get("view", "generate")
    remembered = remembered if remembered in views else "generate"
    view = st.sidebar.radio("View", views, index=views.index(remembered), format_func=VIEWS.get, key="view")
    st.session_state["_view"] = view
    if st.query_params.get("view") != view:
        st.query_params["view"] = view
    return view


def main() -> None:
    st.set_page_config(page_title=TITLE, page_icon="🔢", layout="wide")
    keep_keras_session()
    st.title(TITLE)
    st.caption("Handwritten digits from a GAN trained on MNIST.")
    policy = hosting.load_policy(secrets=hosting.streamlit_secrets())
    for notice in policy.notices:
        st.sidebar.warning(notice)
    view = pick_view(policy)
    generator_from_query()  # a shared link names its generator
    served = guarded(generator_sidebar_ui, name="generator chooser")
    if served is not None and served.warning:
        st.warning(served.warning)
    if view == "train":
        from aigc.app.view_train import train_ui

        guarded(train_ui, policy, name="Train")
    elif served is None:
        no_generator_ui()
    elif view == "write":
        from aigc.app.view_write import write_ui

        guarded(write_ui, served, name="Write a number")
    elif view == "draw":
        from aigc.app.view_draw import draw_ui

        guarded(draw_ui, served, name="Draw a digit")
    elif view == "model":
        from aigc.app.view_model import model_ui

        guarded(model_ui, served, name="Model")
    else:
        from aigc.app.view_generate import generate_ui, interpolation_ui

        guarded(generate_ui, served, name="Generate")
        guarded(interpolation_ui, served, name="Interpolation")
    freeze_startup_heap()


main()
