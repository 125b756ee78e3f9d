"""AIGC digits: the Streamlit dashboard. `streamlit run app.py`

Navigation only: one st.Page per view (aigc/app/pages.py) inside a shared frame (title, hosting
notices, generator chooser). The engine lives in aigc/.
"""
from __future__ import annotations

from aigc.quiet import quiet_tensorflow

quiet_tensorflow()  # before TensorFlow loads: no CUDA/oneDNN chatter in the server log (AIGC_VERBOSE=1 keeps it)

import streamlit as st  # noqa: E402

from aigc.app import hosting  # noqa: E402
from aigc.app.common import (compact_top_ui, freeze_startup_heap, generator_sidebar_ui, guarded,  # noqa: E402
                             keep_keras_session)
from aigc.app.generate_explore import generator_from_query  # noqa: E402
from aigc.app.pages import Frame, build_pages, redirect_old_links  # noqa: E402

TITLE = "AIGC digits"


def main() -> None:
    st.set_page_config(page_title=TITLE, page_icon="🔢", layout="wide")
    keep_keras_session()
    compact_top_ui()
    policy = hosting.load_policy(secrets=hosting.streamlit_secrets())
    generator_from_query()  # a shared link names its generator
    served = guarded(generator_sidebar_ui, name="generator chooser")
    pages = build_pages(Frame(policy, served))
    current = st.navigation(list(pages.values()))
    redirect_old_links(pages)
    st.title(TITLE)
    st.caption("Handwritten digits from a GAN trained on MNIST.")
    for notice in policy.notices:
        st.sidebar.warning(notice)
    if served is not None and served.warning:
        st.warning(served.warning)
    current.run()
    freeze_startup_heap()


main()
