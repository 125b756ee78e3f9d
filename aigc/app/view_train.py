"""Train view: start / stop / resume a background job and watch it live (polled from its run directory)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from aigc.app import hosting
from aigc.app import jobs
from aigc.app.access import authorised_ui
from aigc.engine.spec import PRESETS
from aigc.runs.files import read_metrics
from aigc.runs.layout import RunPaths
from aigc.runs.lifecycle import ACTIVE_STATES, read_status
from aigc.app.charts import loss_figure, missing_digits, probability_figure, quality_figure
from aigc.app.common import guarded, png_bytes

POLL_S = 1.5  # how often the live view re-reads status.json / metrics.jsonl while a job runs
START_CHOICES = {"Train more (shipped weights)": "shipped", "From scratch": "scratch"}
DEFAULT_LR = 2e-4


def train_ui(policy: hosting.Policy) -> None:
    """The whole Train view: live job (polled fragment), Resume, and the new-job form."""
    can_control = not policy.needs_password or authorised_ui(policy)
    flash = st.session_state.pop("_train_flash", None)
    if flash:
        getattr(st, flash[0])(flash[1])
    job = jobs.current_job()
    if job.paths is None and not job.active:
        st.info("No training run yet. Start one below: it runs in the background, and this page shows "
                "its progress live (other tabs and visitors see the same job).")
    else:
        # run_every is decided on each full run: poll only while a job runs.
        live = st.fragment(run_every=POLL_S if job.active else None)(live_ui)
        live(run_dir=str(job.paths.root) if job.paths else "", was_active=job.active, can_control=can_control)
    if not can_control:
        return
    if not job.active and job.paths and (job.status or {}).get("state") in ("stopped", "failed") \
            and job.paths.ckpt.is_dir():
        if st.button(f"Resume {job.name}", key="resume_button", help="Continue from the latest checkpoint "
                     "to the run's planned number of epochs."):
            _after_launch(jobs.resume_job(job.paths, policy=policy))
    new_job_ui(policy)


def _after_launch(result: jobs.StartResult) -> None:
    if result.ok:
        st.session_state["_train_flash"] = ("success", result.message[:1].upper() + result.message[1:])
        st.rerun()  # a full run decides to poll now that a job runs
    st.error(f"Not started: {result.message}")


def live_ui(*, run_dir: str, was_active: bool, can_control: bool) -> None:
    """Progress, Stop, charts and sample grids of one run; re-run every POLL_S seconds while it trains."""
    # Polled reruns bypass the app's panel guard, so this fragment guards itself.
    guarded(_live_body, run_dir=run_dir, was_active=was_active, can_control=can_control, name="live training")


def _live_body(*, run_dir: str, was_active: bool, can_control: bool) -> None:
    now = jobs.current_job()
    if now.active != was_active or (now.paths and str(now.paths.root) != run_dir):
        st.rerun()  # the job started or ended since the full run: redraw the whole page
    paths = RunPaths(Path(run_dir))
    status = read_status(paths) or {}
    st.subheader(f"Run {paths.root.name}")
    progress_ui(status, active=now.active)
    if now.active and can_control:
        if st.button("Stop", key="stop_button", type="primary", help="Graceful: it finishes the current step, "
                     "saves a checkpoint and ends as 'stopped'; Resume continues from there."):
            st.toast(jobs.stop_job(paths))
    if status.get("state") == "failed":
        st.error(f"The trainer failed: {status.get('error') or 'no reason recorded'}")
        log = jobs.tail_log(paths, lines=20)
        if log:
            st.code(log, language=None)
    records = read_metrics(paths.metrics)
    charts_ui(records)
    samples_ui(paths)


def progress_ui(status: dict, *, active: bool) -> None:
    """State, a progress bar with epoch, step, ETA and img/s, and what to do next."""
    state = status.get("state") or ("starting" if active else "unknown")
    total, per_epoch = int(status.get("total_epochs") or 0), int(status.get("steps_per_epoch") or 0)
    done, in_epoch = int(status.get("epoch") or 0), int(status.get("step_in_epoch") or 0)
    fraction = (done * per_epoch + in_epoch) / (total * per_epoch) if total and per_epoch else 0.0
    parts = [f"Epoch {min(status.get('current_epoch') or done, total) if total else '-'}/{total or '-'}"]
    if per_epoch:
        parts.append(f"step {in_epoch}/{per_epoch}")
    if active and status.get("eta_s") is not None:
        parts.append(f"ETA {format_seconds(status['eta_s'])}")
    if status.get("img_per_s"):
        parts.append(f"{status['img_per_s']:.0f} img/s")
    st.markdown(f"State: **{state}**")
    st.progress(min(max(fraction, 0.0), 1.0), text=" - ".join(parts))
    if state == "finished":
        st.success("Finished. The new generator is ready: pick 'Newest trained run' under Generator in the "
                   "sidebar, then open Generate.")
    elif state == "stopped":
        st.warning("Stopped. Its checkpoint is saved; Resume continues from there.")
    elif state in ACTIVE_STATES or active:
        st.info("Training in the background. You can leave this page; the job keeps running.")


def format_seconds(seconds) -> str:
    """12 -> '12 s', 95 -> '1 min 35 s', 4000 -> '1 h 6 min'."""
    seconds = max(0, int(round(float(seconds))))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def charts_ui(records: list[dict]) -> None:
    """Loss and D-output charts, and per-epoch quality when the evaluator recorded it (stable keys)."""
    if not records:
        st.caption("Charts appear after the first logged steps.")
        return
    left, right = st.columns(2)
    left.plotly_chart(loss_figure(records), key="chart_loss", width="stretch")
    right.plotly_chart(probability_figure(records), key="chart_d", width="stretch")
    quality = quality_figure(records)
    if quality is not None:
        st.plotly_chart(quality, key="chart_quality", width="stretch")
    missing = missing_digits(records)
    if missing:
        st.warning(f"Mode collapse warning: the evaluator found no {', '.join(map(str, missing))} in the last "
                   "epoch's samples.")


def samples_ui(paths: RunPaths) -> None:
    """The per-epoch fixed-seed grids (one row per digit) with a slider to watch the digits form."""
    files = paths.sample_files()
    if not files:
        return
    epochs = [int(f.stem.split("_")[-1]) for f in files]
    st.markdown("**Fixed-seed samples per epoch** (row = digit 0-9)")
    # No key: when a new epoch lands the options change and the slider jumps to the newest.
    chosen = st.select_slider("Epoch", options=epochs, value=epochs[-1]) if len(epochs) > 1 else epochs[0]
    try:
        from PIL import Image

        with Image.open(files[epochs.index(chosen)]) as picture:
            picture = picture.resize((picture.width * 2, picture.height * 2), Image.NEAREST)
            st.image(png_bytes(picture), caption=f"epoch {chosen}", output_format="PNG")
    except OSError as error:
        st.caption(f"Sample grid of epoch {chosen} unreadable ({type(error).__name__}).")


def new_job_ui(policy: hosting.Policy) -> None:
    """The new-job form; Start launches `python -m aigc train` in its own process."""
    available, where = jobs.data_source()
    st.subheader("Train more epochs")
    data_path = None
    if not available:
        st.warning(where)
    with st.form("new_job_form"):
        left, middle, right = st.columns(3)
        epochs = left.number_input("Epochs to add", 1, policy.max_epochs, min(5, policy.max_epochs), step=1,
                                   key="job_epochs")
        batch = middle.selectbox("Batch size", jobs.BATCH_SIZES, index=jobs.BATCH_SIZES.index(128), key="job_batch")
        preset = right.selectbox("Preset", PRESETS, key="job_preset")
        start_from = st.radio("Start from", list(START_CHOICES), horizontal=True, key="job_init")
        with st.expander("Learning rates"):
            lr_g = st.number_input("Generator", 1e-6, 0.1, DEFAULT_LR, format="%.6f", key="job_lr_g")
            lr_d = st.number_input("Discriminator", 1e-6, 0.1, DEFAULT_LR, format="%.6f", key="job_lr_d")
        if not available and policy.training == "on":
            data_path = st.text_input("MNIST .npz on this server", key="job_data",
                                      placeholder="/path/to/mnist.npz (Keras layout)")
        submitted = st.form_submit_button("Start training", type="primary")
    st.caption(f"Data: {where if available else 'not found'} - at most {policy.max_epochs} epochs per job, "
               "one job at a time on this server.")
    if submitted:
        problem = _check_data_path(data_path) if data_path else None
        if problem:
            st.error(problem)
            return
        request = jobs.JobRequest(epochs=int(epochs), batch_size=int(batch), preset=preset,
                                  init=START_CHOICES[start_from], lr_g=float(lr_g), lr_d=float(lr_d),
                                  data=str(Path(data_path).expanduser()) if data_path else None)
        _after_launch(jobs.start_job(request, policy=policy))


def _check_data_path(text: str) -> str | None:
    path = Path(text.strip()).expanduser()
    if path.suffix.lower() != ".npz":
        return f"The MNIST file must be an .npz, got {path.name!r}."
    if not path.is_file():
        return f"No such file on the server: {path.name!r}."
    return None
