"""Compare runs: pick runs (and the shipped model); overlaid curves, last grids side by side, settings and quality."""
from __future__ import annotations

import streamlit as st

from aigc.app.explain import how_it_works
from aigc.app.routes import Frame
from aigc.app.widgets import guarded
from aigc.serve import hosting
from aigc.serve.compare import (AXES, COMMON_COUNTS, METRICS, PANELS, compare_figure, counts_differ, entries,
                                not_drawn, pr_ceiling, reevaluate, summary_rows)

MAX_DEFAULT = 3  # preselected entries: the shipped model and the newest runs
COMMON_KEY = "_compare_common_n"  # the sample count this session asked every chosen entry to be re-evaluated on
COUNTS_NOTE = ("These figures were measured on different sample counts (the **samples** column). FDD shrinks as the "
               "count grows, so a figure on 10,000 samples looks better than the same generator's on 2,000 (precision "
               "and recall move with the count too): compare them only on one count.")
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
    metric = metric if metric in METRICS else "fdd"
    figure = compare_figure(chosen, metric, axis=axis if axis in AXES else "epoch")
    if figure is None:
        st.caption(f"None of these recorded {METRICS.get(metric, metric)} per epoch.")
    else:
        st.plotly_chart(figure, key="compare_chart", width="stretch")
        if missing := not_drawn(chosen, metric):
            st.caption(f"Not measured per epoch (no curve): {', '.join(missing)}.")
    if metric in PANELS:
        st.caption(pr_note(found))
    _grids_ui(chosen)
    st.markdown("**Settings and final quality**")
    quality_table_ui(chosen)
    if policy.shows_details:
        st.caption(TENSORBOARD_NOTE)


def quality_table_ui(chosen) -> None:
    """The table; when its figures are on different counts, a note and a button that re-evaluates every chosen
    generator on one count (cached per file for the whole server, so a second visitor waits for nothing)."""
    common = st.session_state.get(COMMON_KEY)
    common = common if common in COMMON_COUNTS else None
    again = {}
    if common is not None:
        try:
            with st.spinner(f"Evaluating on {common:,} samples..."):
                again = {entry.name: result for entry in chosen if (result := reevaluate(entry, common))}
        except Exception as error:  # noqa: BLE001  (no evaluator, a broken file: say so, keep the recorded figures)
            st.session_state.pop(COMMON_KEY, None)
            st.warning(f"Could not re-evaluate ({type(error).__name__}); the recorded figures are shown.")
    rows = summary_rows(chosen, reevaluated=again)
    st.dataframe(rows, hide_index=True, width="stretch", key="compare_table")
    if again and len(again) < len(chosen):
        missing = ", ".join(entry.name for entry in chosen if entry.name not in again)
        st.caption(f"No generator file to re-evaluate for {missing}: its figures keep their own count.")
    if not counts_differ(rows):
        return
    st.info(COUNTS_NOTE)
    left, right = st.columns([1, 2])
    count = left.selectbox("Common sample count", COMMON_COUNTS, index=COMMON_COUNTS.index(2000),
                           format_func=lambda n: f"{n:,} samples", key="compare_count")
    if right.button("Re-evaluate all on this count", key="compare_reevaluate",
                    help="Measures each chosen generator file on the same samples (about 1 s per 2,000 samples on "
                         "2 cores); the result is kept per file for everyone."):
        st.session_state[COMMON_KEY] = count if count in COMMON_COUNTS else 2000
        st.rerun()


def pr_note(found) -> str:
    """What precision and recall mean, and the real digits' own figures (their ceiling, not 1.0) when shipped."""
    note = ("**Precision**: the share of samples that look like some real digit. **Recall**: the share of real test "
            "digits whose style the samples cover. Both use the evaluator's features, k = 3 (Kynkäänniemi et al. 2019)")
    ceiling = pr_ceiling(found)
    if ceiling:
        note += (f"; real training digits against the test set score {ceiling['precision']:.2f} / "
                 f"{ceiling['recall']:.2f} on {ceiling['n']:,} samples: the ceiling, not 1.0")
    return note + ". Like FDD, they depend on the sample count: compare curves of one count."


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
