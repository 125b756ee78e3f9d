"""AIGC digits: the Streamlit dashboard. `streamlit run app.py`

The frame (aigc/app/frame.py) sets up the page, the sidebar and st.navigation; each page lives in
aigc/app/pages/<its URL path>.py. The engine lives in aigc/.
"""
from __future__ import annotations

from aigc.quiet import quiet_tensorflow

quiet_tensorflow()  # before TensorFlow loads: no CUDA/oneDNN chatter in the server log (AIGC_VERBOSE=1 keeps it)

from aigc.app.frame import main  # noqa: E402

main()
