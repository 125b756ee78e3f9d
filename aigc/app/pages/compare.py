"""Compare runs: pick runs (and the shipped model); overlaid curves, last grids side by side, settings and quality."""
from __future__ import annotations

import streamlit as st

from aigc.app.explain import how_it_works
from aigc.app.routes import Frame
from aigc.app.widgets import guarded
from aigc.serve import hosting
from aigc.serve.compare import AXES, METRICS, compare_figure, entries, summary_rows

MAX_DEFAULT = 3  # preselected entries: the shipped model and the newest runs
TENSORBOARD_NOTE = ("Every run also keeps TensorBoard logs in its `tb/` folder: `tensorboard --logdir runs` "
                    "shows them all, with TensorBoard's own run selector.")


def page(frame: Frame) -> None:
    """The Compare-runs page."""
    guarded(compare_ui, frame.policy, name="Compare runs")


def compare_ui(policy: hosting.Policy) -> None:
    """The Compare page: a multiselect of entries, then curves, grids and a table for the chosen ones."""
    how_it_works("compare")
    found = entries()
    if not found:
        st.info("Nothing to compare yet: train a run (Train page); the shipped model joins when its log is shipped.")
        return
    names = [entry.name for entry in found]
    chosen_names = st.multiselect("Runs to compare", names, default=names[:MAX_DEFAULT], key="compare_pick",
                                  help="Two or more runs, and the shipped model.")
    chosen = [entry for entry in found if entry.name in chosen_names]
    if not chosen:
        st.caption("Pick at least one run.")
        return
    left, right = st.columns([2, 1])
    metric = left.selectbox("Metric", list(METRICS), format_func=METRICS.get, key="compare_metric")
    axis = right.radio("Along", list(AXES), format_func=lambda a: {"epoch": "epochs", "time": "training time"}[a],
                       horizontal=True, key="compare_axis")
    figure = compare_figure(chosen, metric if metric in METRICS else "fdd", axis=axis if axis in AXES else "epoch")
    if figure is None:
        st.caption(f"None of these recorded {METRICS.get(metric, metric)} per epoch.")
    else:
        st.plotly_chart(figure, key="compare_chart", width="stretch")
    _grids_ui(chosen)
    st.markdown("**Settings and final quality**")
    st.dataframe(summary_rows(chosen), hide_index=True, width="stretch")
    if policy.shows_details:
        st.caption(TENSORBOARD_NOTE)


def grid_label(stem: str) -> str:
    """'epoch_0002' -> 'epoch 2'; any other file name -> 'last grid'."""
    head, _sep, number = stem.rpartition("_")
    return f"epoch {int(number)}" if head == "epoch" and number.isdigit() else "last grid"


def _grids_ui(chosen) -> None:
    with_grids = [entry for entry in chosen if entry.samples]
    if not with_grids:
        return
    st.markdown("**Last sample grids** (fixed seeds, one row per digit)")
    for column, entry in zip(st.columns(len(with_grids)), with_grids):
        last = entry.samples[-1]
        try:
            column.image(last.read_bytes(), caption=f"{entry.name}: {grid_label(last.stem)}",
                         output_format="PNG", width="stretch")
        except OSError as error:
            column.caption(f"{entry.name}: grid unreadable ({type(error).__name__}).")
