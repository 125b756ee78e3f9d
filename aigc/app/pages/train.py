"""Train view: start / stop / resume a background job, watch it live, list and delete runs.

The job is `python -m aigc train` in its own process (aigc.serve.jobs); this view only reads its
run directory. Messages pass through _public: one line, no server path, and no pid for visitors.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import streamlit as st
from PIL import Image

from aigc import settings
from aigc.serve import hosting, jobs
from aigc.serve.compare import run_spec
from aigc.serve.caches import CHARTS, SAMPLE_GRIDS, file_key
from aigc.serve.watcher import WATCHERS
from aigc.serve.charts import ChartRecords, loss_figure, probability_figure, quality_figure
from aigc.app.password import authorised_ui
from aigc.app.routes import Frame
from aigc.app.explain import how_it_works
from aigc.app.inside import inside_ui
from aigc.app.widgets import guarded, whole_number_input
from aigc.engine.spec import PRESETS, SETTINGS
from aigc.runs.files import png_bytes
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import RESUMABLE_STATES
from aigc.runs.lock import TrainingLock
from aigc.settings import without_paths
from aigc.text import duration

POLL_S = 1.5  # how often the live view re-reads status.json / metrics.jsonl while a job runs
IDLE_POLL_S = 5.0  # with no job: how often a shown run checks the lock (a Resume or Start in another tab)
START_CHOICES = {"Train more (shipped weights)": "shipped", "From scratch": "scratch"}
PRESET_DEFAULT = "preset's default"
PENDING_DELETE = "_delete_pending"  # the run a Delete click asks about, until Delete or Cancel
SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,80}")  # a file name shown back on the page (no markdown)
LEARNING_RATE_NOTE = (
    f"Empty: the preset's own. dcgan starts at {SETTINGS['lr_g'].default_for('dcgan'):g} and halves both every "
    f"{SETTINGS['lr_half_life'].default_for('dcgan'):g} epochs, counted from the epochs behind the weights it starts "
    f"from (train more continues the shipped generator's schedule); seed keeps {SETTINGS['lr_g'].default_for('seed'):g}.")
STATE_NOTES = {
    "created": ("info", "Starting: the trainer is loading TensorFlow and the data."),
    "running": ("info", "Training in the background. You can leave this page; the job keeps running."),
    "stopping": ("warning", "Stopping... the trainer finishes its current step and saves a checkpoint."),
    "stopped": ("warning", "Stopped. Its checkpoint is saved; Resume continues from there."),
    "finished": ("success", "Finished. The new generator is ready: the sidebar's 'Use {link}' button (or {link} "
                            "under Generator) serves it on every page; then open Generate."),
}


NO_RUN_YET = ("No training run yet. Start one below: it runs in the background, and this page shows its progress "
              "live (other tabs and visitors see the same job).")
NO_RUN_LOCKED = ("No training run yet. Starting one needs this server's training password (above); anyone may "
                 "watch a job here once one runs.")


def page(frame: Frame) -> None:
    """The Train page (registered only when training is visible)."""
    guarded(train_ui, frame.policy, client=frame.visitor.client, name="Train")


def train_ui(policy: hosting.Policy, *, client: str = "local") -> None:
    """The whole Train view: live job (polled fragment) with its controls, the new-job form, the runs list."""
    how_it_works("train")
    can_control = not policy.needs_password or authorised_ui(policy, client=client)
    flash = st.session_state.pop("_train_flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])
    job = jobs.current_job()
    if job.paths is None:
        st.info(NO_RUN_YET if can_control else NO_RUN_LOCKED)
    else:
        # Decided on each full run: fast while a job runs; slow without one, so a job started elsewhere shows here.
        live = st.fragment(run_every=POLL_S if job.active else IDLE_POLL_S)(live_ui)
        live(run_dir=str(job.paths.root), was_active=job.active, can_control=can_control, policy=policy)
    if can_control:
        new_job_ui(policy, busy=job.active, newest=job.paths)
    runs_ui(policy, can_control=can_control)


def _public(message: str, policy: hosting.Policy) -> str:
    """One line without server paths (any mode), and without pids when hosted."""
    return hosting.visitor_message(without_paths(message), policy)


def _say(policy: hosting.Policy, kind: str, message: str) -> None:
    getattr(st, kind)(_public(message, policy))


def _after_launch(result: jobs.StartResult, policy: hosting.Policy) -> None:
    message = _public(result.message, policy)
    if result.paths is not None:
        WATCHERS.of(result.paths.root).invalidate()  # the next view shows the launch, not the state before it
    if result.ok:
        st.session_state["_train_flash"] = ("success", message[:1].upper() + message[1:])
        st.rerun()  # a full run decides to poll now that a job runs
    if jobs.current_job().active:  # lost a race: redraw with the job that won
        st.session_state["_train_flash"] = ("error", f"Not started: {message}")
        st.rerun()
    st.error(f"Not started: {message}")


def live_ui(*, run_dir: str, was_active: bool, can_control: bool, policy: hosting.Policy) -> None:
    """Progress, Stop / Resume, charts and sample grids of one run; re-run every POLL_S seconds while it trains."""
    # Polled reruns bypass the app's panel guard, so this fragment guards itself.
    guarded(_live_body, run_dir=run_dir, was_active=was_active, can_control=can_control, policy=policy,
            name="live training")


def _live_body(*, run_dir: str, was_active: bool, can_control: bool, policy: hosting.Policy) -> None:
    holder = _holder_unless_changed(run_dir, was_active=was_active)
    paths = RunPaths(Path(run_dir))
    # One reader per run for the whole server: every tab watching this run shares the snapshot and its figures.
    snapshot = WATCHERS.of(paths.root).snapshot(holder=holder)
    status = dict(snapshot.status or {})
    st.subheader(f"Run {paths.name}")
    progress_ui(status, active=was_active, link=f"Run {paths.name}")
    controls_ui(paths, status, active=was_active, can_control=can_control, policy=policy)
    charts_ui(CHARTS.get(str(paths.root), snapshot.version,
                         lambda: run_figures(counted_records(ChartRecords.of(snapshot.records), paths))))
    samples_ui(paths, snapshot.sample_epochs)
    inside_ui(paths, snapshot.sample_epochs)


def _holder_unless_changed(run_dir: str, *, was_active: bool) -> dict | None:
    """The lock's holder now; a full rerun when a job started or ended since the full run (the whole page changes).

    Without a job an idle poll probes the lock only (no folder is listed): a tab left open costs next to nothing."""
    if not was_active:
        holder = TrainingLock(settings.runs_root()).holder()
        if holder is not None:
            st.rerun()  # a Start or Resume in another tab: this page now shows that job, polled fast
        return None
    now = jobs.current_job()
    if not now.active or (now.paths and str(now.paths.root) != run_dir):
        st.rerun()
    return now.holder


def progress_ui(status: dict, *, active: bool, link: str = "the run") -> None:
    """State, a progress bar with epoch, step, ETA and img/s (only what is true in this state)."""
    state = status.get("state") or ("created" if active else "unknown")
    st.markdown(f"State: **{state}**" + _hardware(status))
    st.progress(_fraction(status), text=progress_text(status))
    kind, note = STATE_NOTES.get(state, (None, None))
    if note:
        getattr(st, kind)(note.format(link=link))


def _hardware(status: dict) -> str:
    """' - 2 workers x 1 replica' when a run reports more than one of either, else ''."""
    workers, replicas = int(status.get("workers") or 1), int(status.get("replicas") or 1)
    if workers == 1 and replicas == 1:
        return ""
    return f" - {workers} worker{'s' * (workers > 1)} x {replicas} replica{'s' * (replicas > 1)}"


def _fraction(status: dict) -> float:
    total, per_epoch = int(status.get("total_epochs") or 0), int(status.get("steps_per_epoch") or 0)
    if status.get("state") == "finished":
        return 1.0
    if not total or not per_epoch:
        return 0.0
    done = int(status.get("epoch") or 0) * per_epoch + int(status.get("step_in_epoch") or 0)
    return min(max(done / (total * per_epoch), 0.0), 1.0)


def progress_text(status: dict) -> str:
    """'Epoch 2/5 - step 10/468 - ETA 1 min 3 s - 812 img/s' while training; 'Epoch 5/5' once finished."""
    state, total = status.get("state"), int(status.get("total_epochs") or 0)
    done, per_epoch = int(status.get("epoch") or 0), int(status.get("steps_per_epoch") or 0)
    in_epoch = int(status.get("step_in_epoch") or 0)
    ended = state not in ("created", "running", "stopping")
    if state == "finished" or not total or (ended and not in_epoch):
        return f"Epoch {done}/{total or '-'}"  # ended on an epoch boundary: no 'step 0/468'
    current = min(done + 1 if ended else int(status.get("current_epoch") or done + 1), total)
    parts = [f"Epoch {current}/{total}"]
    if per_epoch:
        parts.append(f"step {in_epoch}/{per_epoch}")
    if state == "running":
        if status.get("eta_s") is not None:
            parts.append(f"ETA {duration(status['eta_s'])}")
        if status.get("img_per_s"):
            parts.append(f"{status['img_per_s']:.0f} img/s")
    return " - ".join(parts)


def controls_ui(paths: RunPaths, status: dict, *, active: bool, can_control: bool, policy: hosting.Policy) -> None:
    """Stop while it runs, Resume in the same place once it stopped or failed; the reason of a failure."""
    state = status.get("state")
    if status.get("warning"):
        _say(policy, "warning", f"Note: {status['warning']}")
    if state == "failed":
        _say(policy, "error", f"The trainer failed: {status.get('error') or 'no reason recorded'}")
    if not can_control:
        return
    if active and state in ("created", "running"):
        if st.button("Stop", key="stop_button", type="primary", help="Graceful: it finishes the current step, "
                     "saves a checkpoint and ends as 'stopped'; Resume continues from there."):
            jobs.stop_job(paths)
            WATCHERS.of(paths.root).invalidate()
            st.rerun()  # show "Stopping..." at once, in place of Stop
    elif not active and state in RESUMABLE_STATES and paths.config.is_file():
        if st.button(f"Resume {paths.name}", key="resume_button", type="primary", help="Continue from the latest "
                     "checkpoint to the run's planned number of epochs."):
            _after_launch(jobs.resume_job(paths, policy=policy), policy)
    if policy.shows_details and paths.log.is_file():
        st.download_button("Download train.log", jobs.log_for_download(paths), file_name=f"{paths.name}.log",
                           key="log_download", mime="text/plain")


def counted_records(records, paths: RunPaths):
    """records, where epoch records written before they carried eval_n get the run spec's evaluation count (copied
    only then: a newer run's records are handed on as they are). ChartRecords: its (thinned) epoch rows only."""
    if isinstance(records, ChartRecords):
        epochs = counted_records(records.epochs, paths)
        return records if epochs is records.epochs else dataclasses.replace(records, epochs=list(epochs))
    if all(r.get("kind") != "epoch" or "eval_n" in r for r in records):
        return records
    count = run_spec(paths).get("eval_samples")
    return tuple(dict(r, eval_n=count) if r.get("kind") == "epoch" and "eval_n" not in r and count else r
                 for r in records)


def run_figures(records) -> dict | None:
    """The Train page's figures of a run's records (None before the first record): built once per snapshot."""
    if not records:
        return None
    data = ChartRecords.of(records)  # split and thinned once for the three figures
    figures = {"loss": loss_figure(data), "d": probability_figure(data), "quality": quality_figure(data)}
    for figure in figures.values():
        if figure is not None:
            figure.to_dict()  # its plain dict, made here once for every session that will draw it
    return {**figures, "collapsed": data.collapsed}


def charts_ui(figures: dict | None) -> None:
    """Loss and D-output charts, and per-epoch quality when the evaluator recorded it (stable keys)."""
    if figures is None:
        st.caption("Charts appear after the first logged steps.")
        return
    left, right = st.columns(2)
    left.plotly_chart(figures["loss"], key="chart_loss", width="stretch")
    right.plotly_chart(figures["d"], key="chart_d", width="stretch")
    if figures["quality"] is not None:
        st.plotly_chart(figures["quality"], key="chart_quality", width="stretch")
    collapsed = figures["collapsed"]
    if collapsed:
        st.warning(f"Mode collapse warning: the evaluator found {', '.join(map(str, collapsed))} absent or rare "
                   "in the last epoch's samples.")


def samples_ui(paths: RunPaths, epochs: tuple[int, ...]) -> None:
    """The per-epoch fixed-seed grids (one row per digit) with a slider to watch the digits form."""
    epochs = list(epochs)
    if not epochs:  # the first epoch in progress: its live grid, redrawn at each quick check
        data = _grid_png(paths.live_sample)
        if data:
            st.markdown("**Fixed-seed samples, first epoch in progress** (row = digit 0-9)")
            st.image(data, output_format="PNG")
        return
    files = [paths.sample_path(epoch) for epoch in epochs]
    st.markdown("**Fixed-seed samples per epoch** (row = digit 0-9)")
    # No key: when a new epoch lands the options change and the slider jumps to the newest.
    chosen = st.select_slider("Epoch", options=epochs, value=epochs[-1]) if len(epochs) > 1 else epochs[0]
    data = _grid_png(files[epochs.index(chosen)])
    if data:
        st.image(data, caption=f"epoch {chosen}", output_format="PNG")
    else:
        st.caption(f"Sample grid of epoch {chosen} unreadable.")


def _grid_png(path) -> bytes | None:
    """A sample grid scaled 2x for the page (once per file and mtime for the server), None when missing or unreadable."""
    def make() -> bytes:
        with Image.open(path) as picture:
            return png_bytes(picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST))

    try:
        return SAMPLE_GRIDS.get_or_make(file_key(path), make)
    except (OSError, ValueError):
        return None


def data_ui(policy: hosting.Policy, newest: RunPaths | None) -> tuple[bool, str, bool]:
    """(data found, where for people, whether the form asks for a path): the server's MNIST, else the file given in
    the path field (or the one the newest run trains on, put there); a warning saying what to do when there is none."""
    available, where = jobs.data_source()
    if available or not policy.allows_server_paths:
        if not available:
            st.warning(_public(f"{where} The server's operator can set ${settings.MNIST_ENV} to an MNIST .npz "
                               "(Keras layout) before starting the app.", policy))
        return available, where, False
    if not st.session_state.get("job_data"):
        recorded = run_spec(newest).get("data") if newest is not None else None
        if recorded and Path(recorded).is_file():
            st.session_state["job_data"] = recorded  # the file the newest run trains on: the next job's too
    given = str(st.session_state.get("job_data") or "").strip()
    if given and Path(given).expanduser().is_file():
        name = Path(given).name
        return True, f"{name if SAFE_FILE_NAME.fullmatch(name) else 'the file'} given below", True
    st.warning(_public(f"{where} Give the path of an MNIST .npz on this server (Keras layout: x_train, y_train, "
                       f"x_test, y_test) in the field below, or set ${settings.MNIST_ENV} before starting the app.",
                       policy))
    return False, where, True


def new_job_ui(policy: hosting.Policy, *, busy: bool, newest: RunPaths | None = None) -> None:
    """The new-job form; Start is disabled, with the reason, while a job runs."""
    st.subheader("Train more epochs")
    available, where, ask_path = data_ui(policy, newest)
    data_path = None
    with st.form("new_job_form"):
        left, middle, right = st.columns(3)
        epochs = whole_number_input("Epochs to add", 1, policy.max_epochs, value=min(5, policy.max_epochs),
                                    key="job_epochs", container=left)
        batch = middle.selectbox("Batch size", (PRESET_DEFAULT,) + jobs.BATCH_SIZES, key="job_batch")
        preset = right.selectbox("Preset", PRESETS, key="job_preset")
        start_from = st.radio("Start from", list(START_CHOICES), horizontal=True, key="job_init")
        with st.expander("Learning rates"):
            st.caption(LEARNING_RATE_NOTE)
            lr_g = st.number_input("Generator", 1e-6, jobs.MAX_PAGE_LR, None, format="%.6f", key="job_lr_g",
                                   placeholder=PRESET_DEFAULT)
            lr_d = st.number_input("Discriminator", 1e-6, jobs.MAX_PAGE_LR, None, format="%.6f", key="job_lr_d",
                                   placeholder=PRESET_DEFAULT)
        if ask_path:
            data_path = st.text_input("MNIST .npz on this server", key="job_data",
                                      placeholder="/path/to/mnist.npz (Keras layout)")
        submitted = st.form_submit_button("Start training", type="primary", disabled=busy)
    if busy:
        st.caption("A job is running: one job at a time on this server. Stop it, or wait until it ends.")
    st.caption(f"Data: {where if available else 'not found'} - at most {policy.max_epochs} epochs per job.")
    if submitted and not busy:
        request = jobs.JobRequest(epochs=int(epochs), batch_size=None if batch == PRESET_DEFAULT else int(batch),
                                  preset=preset, init=START_CHOICES.get(start_from, "scratch"),
                                  lr_g=None if lr_g is None else float(lr_g), lr_d=None if lr_d is None else float(lr_d),
                                  data=str(Path(data_path.strip()).expanduser()) if data_path else None)
        _after_launch(jobs.start_job(request, policy=policy), policy)


def runs_ui(policy: hosting.Policy, *, can_control: bool) -> None:
    """Every run with its state, last quality and size on disk; delete the ones that are not training (asked twice)."""
    rows = jobs.run_rows()
    if not rows:
        return
    with st.expander(f"Runs ({len(rows)})", expanded=PENDING_DELETE in st.session_state):
        st.dataframe([jobs.shown_row(row) for row in rows], hide_index=True, key="runs_table", width="stretch")
        deletable = [row["run"] for row in rows if not row["running"]]
        if not can_control or not deletable:
            return
        left, right = st.columns([3, 1])
        name = left.selectbox("Run to delete", deletable, key="delete_choice")
        if right.button("Delete run", key="delete_button") and name in deletable:
            st.session_state[PENDING_DELETE] = name
        pending = st.session_state.get(PENDING_DELETE)
        if pending in deletable:  # a forged or stale name is never offered
            confirm_delete_ui(pending, policy, rows)


def confirm_delete_ui(name: str, policy: hosting.Policy, rows: list[dict]) -> None:
    """The second step of a delete: what goes, then Delete or Cancel."""
    size = next((row["MB"] for row in rows if row["run"] == name), None)
    st.warning(f"Delete {name} and every file in it ({size} MB: checkpoints, samples, generator)? "
               "This cannot be undone.")
    yes, no = st.columns(2)
    if no.button("Cancel", key="delete_cancel"):
        st.session_state.pop(PENDING_DELETE, None)
        st.rerun()
    if yes.button(f"Delete {name}", key="delete_confirm", type="primary"):
        st.session_state.pop(PENDING_DELETE, None)
        problem = jobs.delete_job(RunPaths(jobs.run_folder(name)))
        if problem:
            _say(policy, "error", problem)
        else:
            st.session_state["_train_flash"] = ("success", f"Deleted {name}.")
            st.rerun()
