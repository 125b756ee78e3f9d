"""Shared UI pieces: the cached generator loader, the generator chooser, a no-traceback guard."""
from __future__ import annotations

import gc
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from aigc import settings
from aigc.app import jobs
from aigc.app.process_cache import ProcessCache
from aigc.engine.checkpoints import CheckpointError, load_generator

LOG = logging.getLogger("aigc.app")
GENERATOR_KEY = "generator_choice"


@dataclass(frozen=True)
class Served:
    """The generator the page serves: model, config, card, where it came from, and any warning."""

    model: object
    config: object
    card: dict
    path: Path
    label: str
    warning: str | None = None


# Process-level, not st.cache_resource: a visitor's clear-cache message must not force reloads for everyone.
GENERATORS = ProcessCache(max_entries=6)


def file_key(path: Path) -> tuple[str, int]:
    """(path, modification time in ns): a retrained file is a new key, an unchanged one is reused."""
    return str(path), Path(path).stat().st_mtime_ns


def process_cached(cache: ProcessCache, key, make, *, spinner: str | None = None):
    """cache.get_or_make(key, make), showing `spinner` only when the value must be computed."""
    if spinner is None or key in cache:
        return cache.get_or_make(key, make)
    with st.spinner(spinner):
        return cache.get_or_make(key, make)


def load_served(path: Path):
    """(model, config, card) for a generator file, loaded once per process per (path, mtime)."""
    key = file_key(path)
    return process_cached(GENERATORS, key, lambda: load_generator(key[0]), spinner="Loading the generator...")


def generator_sidebar_ui() -> Served | None:
    """Sidebar chooser among server-side generators; falls back to the shipped one with a warning."""
    choices = jobs.generator_choices()
    if not choices:
        st.sidebar.info("No generator yet.")
        return None
    labels = [c.label.split(" (")[0] for c in choices]  # stable labels: the run name changes
    remembered = st.session_state.get("_generator_label")
    label = st.sidebar.selectbox("Generator", labels, index=labels.index(remembered) if remembered in labels else 0,
                                 key=GENERATOR_KEY, help="Generators found on the server. While a job trains, "
                                 "'Newest trained run' follows its latest saved epoch.")
    st.session_state["_generator_label"] = label
    chosen = choices[labels.index(label)] if label in labels else choices[0]
    if chosen.kind == "run":
        st.sidebar.caption(f"Run: {chosen.path.parent.name}")
    return _served_with_fallback(chosen, choices)


def _served_with_fallback(chosen, choices) -> Served | None:
    problems = []
    for candidate in [chosen] + [c for c in choices if c.kind == "shipped" and c != chosen]:
        try:
            model, config, card = load_served(candidate.path)
        except (CheckpointError, OSError) as error:
            problems.append(f"{candidate.label}: {error}")
            LOG.warning("generator unusable: %s", error)
            continue
        warning = None
        if problems:
            warning = f"The selected generator could not be loaded, serving {candidate.label} instead. " \
                      f"{_redact(problems[0])}"
        return Served(model, config, card, candidate.path, candidate.label, warning)
    st.error("No usable generator: " + " | ".join(_redact(p) for p in problems))
    return None


def _redact(message: str) -> str:
    """Strip the server's absolute folders from a message shown to visitors."""
    for folder in (str(settings.runs_root()), str(settings.checkpoint_dir()), os.getcwd()):
        message = message.replace(folder + os.sep, "").replace(folder, "")
    return message


def no_generator_ui() -> None:
    st.info("No generator is available yet. The shipped weights belong in `checkpoints/generator.keras`; "
            "or train one in the **Train** view, then pick 'Newest trained run' in the sidebar.")


def a_digit(digit) -> str:
    """'a 7', 'an 8': the article a digit takes when read aloud."""
    return f"an {digit}" if str(digit) in ("8", "11", "18") else f"a {digit}"


def toast(message: str, *, icon: str = ":material/check_circle:") -> None:
    """A short-lived notice; its first letter is capitalised whatever the caller wrote."""
    st.toast(message[:1].upper() + message[1:], icon=icon)


def guarded(panel, *args, name: str, **kwargs):
    """Run a panel; any unexpected error becomes one clear st.error line (the traceback goes to the log)."""
    try:
        return panel(*args, **kwargs)
    except Exception as error:  # noqa: BLE001  (a traceback must never reach the page)
        LOG.exception("%s panel failed", name)
        st.error(f"The {name} panel hit a problem and stopped: {type(error).__name__}: {_redact(str(error))[:300]}")
        return None


_FROZEN, _FREEZE_LOCK = threading.Event(), threading.Lock()  # once per process: the heap is frozen
TOP_CSS = "<style>.stMainBlockContainer, .block-container {padding-top: 2.5rem;}</style>"


def compact_top_ui() -> None:
    """Remove the empty band Streamlit leaves above the title (6 rem of padding for its header)."""
    st.html(TOP_CSS)


def display_scale(*, columns: int, target_px: int = 560) -> int:
    """Integer nearest-neighbour upscaling so a grid of `columns` 28-px digits is about target_px wide."""
    return max(1, min(12, target_px // (columns * 30)))


def keep_keras_session() -> None:
    """Stop Streamlit from calling keras.backend.clear_session() after every rerun.

    Streamlit does that for apps that build models in the script; this app builds none per
    rerun (generators and the evaluator are cached resources), so the call only cost a full
    gc.collect(): ~250 ms of CPU per click and per poll while training (measured in AppTest).
    """
    import keras

    if getattr(keras.backend.clear_session, "__name__", "") != "_clear_session_skipped_by_aigc":
        def _clear_session_skipped_by_aigc(*_args, **_kwargs):
            return None

        keras.backend.clear_session = _clear_session_skipped_by_aigc


def freeze_startup_heap() -> None:
    """Once per server process, after the first page: move the long-lived heap out of the cyclic GC's sight.

    Streamlit runs gc.collect(2) after every script run (`runner.postScriptGC`). With TensorFlow,
    Keras and the served models loaded that walks ~400k objects: ~160 ms with the GIL held, during
    which the server sends nothing, so every click and every training poll waited for it (it was
    most of the gap to a trivial Streamlit page in the browser benchmark). gc.freeze() leaves
    those objects alone (the interpreter's documented tool for a large long-lived heap); the
    collection after each run then takes ~1 ms, and generators loaded later are still collected.
    """
    # Not gc.get_freeze_count(): it walks the whole frozen list with the GIL held (~40 ms a run under load).
    with _FREEZE_LOCK:
        if _FROZEN.is_set():
            return
        gc.collect()  # what is garbage now is freed, not frozen
        gc.freeze()
        _FROZEN.set()
