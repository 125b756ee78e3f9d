"""Widgets and helpers every page may use: the no-traceback guard, tiles with readings, sliders, links, the pinned hand."""
from __future__ import annotations

import contextlib
import logging

import numpy as np
import streamlit as st
from PIL import Image

from aigc.app.routes import page_link
from aigc.engine.sampling import run_generator, to_uint8
from aigc.explore import directions as dirs
from aigc.explore.reading import read_images, tile_texts
from aigc.explore.tiles import labeled_grid
from aigc.quality import metrics
from aigc.runs.files import png_bytes
from aigc.serve.caches import DIRECTIONS, PREVIEWS, file_key
from aigc.serve.generators import Served
from aigc.settings import without_paths

LOG = logging.getLogger("aigc.app")
SLIDER_STEP = 0.1
PREVIEW_VALUES = (-2.0, -1.0, 0.0, 1.0, 2.0)
STACKED_COLUMNS_PX = 640  # Streamlit's breakpoint (theme.breakpoints.columns) under which columns stack
PINNED_KEY = "_pinned_style"  # the pinned latent (D,) as floats: Write a number's row 1, Interpolate's end A
PINNED_DIGIT_KEY = "_pinned_digit"  # its digit (None: pinned from an unconditional view)
PINNED_SOURCE_KEY = "_pinned_source"  # (grid, tile) last pinned: a rerun with the same selection pins nothing new


def guarded(panel, *args, name: str, **kwargs):
    """Run a panel; any unexpected error becomes one clear st.error line (the traceback goes to the log)."""
    try:
        return panel(*args, **kwargs)
    except Exception as error:  # noqa: BLE001  (a traceback must never reach the page)
        LOG.exception("%s panel failed", name)
        st.error(f"The {name} panel hit a problem and stopped: {type(error).__name__}: {without_paths(error)[:300]}")
        return None


def whole_number_input(label: str, low=None, high=None, *, key: str, value=None, container=None, **kwargs):
    """A number input for whole numbers that forged input cannot crash: a float widget shown without decimals.

    Streamlit turns an integer widget's incoming value into int() before it checks that it is finite,
    so a forged NaN or infinity raised inside Streamlit (its generic error page); a float widget resets
    such a value to its default. Callers round and bound what it returns (explore.params).
    """
    if isinstance(st.session_state.get(key), int) and not isinstance(st.session_state.get(key), bool):
        st.session_state[key] = float(st.session_state[key])
    options = {name: float(number) for name, number in (("min_value", low), ("max_value", high), ("value", value))
               if number is not None}
    return (container or st).number_input(label, step=1.0, format="%.0f", key=key, **options, **kwargs)


def results_first_on_phones(key: str) -> None:
    """On a screen narrow enough that Streamlit stacks columns (640 px), the column holding st.container(key=key)
    comes first: a phone shows the result above the controls instead of below the fold."""
    st.html(f"<style>@media (max-width: {STACKED_COLUMNS_PX}px) {{ [data-testid='stColumn']:has(.st-key-{key}) "
            "{ order: -1; } }</style>")


def dimmed(key: str) -> None:
    """Show st.container(key=key) faded: a result kept on screen that no longer matches the controls."""
    st.html(f"<style>.st-key-{key} {{ opacity: 0.45; }}</style>")


def spinner_unless(ready: bool, text: str):
    """st.spinner(text) when work must be done, else nothing (a cached value shows no flash)."""
    return contextlib.nullcontext() if ready else st.spinner(text)


def a_digit(digit) -> str:
    """'a 7', 'an 8': the article a digit takes when read aloud."""
    return f"an {digit}" if str(digit) in ("8", "11", "18") else f"a {digit}"


def toast(message: str, *, icon: str = ":material/check_circle:") -> None:
    """A short-lived notice; its first letter is capitalised whatever the caller wrote."""
    st.toast(message[:1].upper() + message[1:], icon=icon)


def display_scale(*, columns: int, target_px: int = 560) -> int:
    """Integer nearest-neighbour upscaling so a grid of `columns` 28-px digits is about target_px wide."""
    return max(1, min(12, target_px // (columns * 30)))


def picture_png(image: np.ndarray, *, scale: int = 4) -> bytes:
    """PNG bytes of a (H, W) float image in [0, 1], upscaled crisply by scale (1..12)."""
    picture = Image.fromarray(to_uint8(image), mode="L")
    scale = int(np.clip(scale, 1, 12))
    return png_bytes(picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST))


def directions_of(served: Served) -> dirs.Directions:
    """The served generator's style directions: the shipped file when it matches, else fit once per server."""
    key = file_key(served.path)
    with spinner_unless(key in DIRECTIONS, "Finding the style directions..."):
        return DIRECTIONS.get_or_make(key, lambda: dirs.directions_for(lambda: served.model, served.latent_dim, key[0]))


def reading_of(images: np.ndarray, requested=None):
    """The evaluator's Reading of (N, 28, 28) images, or None when the evaluator is not shipped."""
    if not metrics.evaluator_available():
        return None
    return read_images(images, requested=requested)


def labeled_png(images: np.ndarray, requested=None, *, ncol: int = 10, scale: int = 3) -> tuple[bytes, object]:
    """(PNG of tiles with the evaluator's label and calibrated confidence under each, Reading or None)."""
    reading = reading_of(images, requested)
    if reading is None:
        texts, flags = [""] * len(images), np.zeros(len(images), bool)
    else:
        texts, flags = tile_texts(reading), reading.doubt
    return png_bytes(labeled_grid(images, texts, flags, ncol=ncol, scale=scale)), reading


def reading_caption(reading, requested: np.ndarray) -> str:
    """One line: how many tiles read as requested, how many doubted and why."""
    if reading is None:
        return "The evaluator is not shipped with this server: no reading."
    hits = int(np.sum(reading.labels == requested))
    if not reading.calibrated:
        return (f"Evaluator: {hits}/{len(requested)} read as asked, {int(reading.doubt.sum())} doubted. Its calibration "
                "is not shipped with this server: confidence is uncalibrated and nothing is flagged as unlike MNIST.")
    return (f"Evaluator: {hits}/{len(requested)} read as asked, {int(reading.doubt.sum())} doubted "
            f"({int(reading.ood.sum())} look unlike MNIST). Under each tile: label and calibrated confidence; "
            "'?' = doubt, '!' = out of distribution, red frame = flagged.")


def sliders_ui(prefix: str, defaults: dict) -> dict:
    """Three style sliders (ink, slant, width) in [-2, 2]; returns {name: value}."""
    values = {}
    for name in dirs.NAMES:
        key = f"{prefix}_{name}"
        if key not in st.session_state:
            st.session_state[key] = float(defaults.get(name, 0.0))
        values[name] = st.slider(dirs.LABELS[name], dirs.SLIDER_MIN, dirs.SLIDER_MAX, step=SLIDER_STEP, key=key,
                                 help="Latent standard deviations along a direction fit on generated digits.")
    return {name: float(np.clip(value, dirs.SLIDER_MIN, dirs.SLIDER_MAX)) for name, value in values.items()}


def preview_pngs(served: Served, z: np.ndarray, digit: int) -> list[bytes]:
    """One PNG strip per style direction (dirs.NAMES order): latent z (D,) of one digit at PREVIEW_VALUES along it.

    All strips come from one generator call and are shared by every session per (file, z, digit).
    """
    z = np.asarray(z, np.float32)

    def make():
        directions = directions_of(served)
        vectors = [directions.vectors[directions.names.index(name)] for name in dirs.NAMES]
        moved = np.stack([z + value * vector for vector in vectors for value in PREVIEW_VALUES]).astype(np.float32)
        images = run_generator(served.model, moved, np.full(len(moved), digit, np.int32))
        strips = images.reshape(len(vectors), len(PREVIEW_VALUES), 28, 28)
        return [picture_png(np.concatenate(list(strip), axis=1), scale=2) for strip in strips]

    return PREVIEWS.get_or_make(file_key(served.path) + (tuple(np.round(z, 5).tolist()), int(digit)), make)


def copy_link_ui(query: dict, *, page: str, label: str = "Copy link") -> str:
    """A button that opens the full link to `page` with `query` and a copy button (st.code's); returns the link.

    In a popover: st.code shown on the page made every first visit load ~1.5 MB of syntax highlighter before the
    first digits (bench --browser); a popover's content loads when opened.
    """
    link = page_link(st.context.url, page, query)
    with st.popover(label, icon=":material/link:"):
        st.caption("The button at the right of the box copies it.")
        st.code(link, language=None, wrap_lines=True)
    return link


def pin(z: np.ndarray, digit: int | None, *, source: tuple, state=None) -> bool:
    """Pin latent z (D,) with its digit unless this source (grid, tile) is already pinned; True when newly pinned."""
    state = st.session_state if state is None else state
    if state.get(PINNED_SOURCE_KEY) == source:
        return False
    state[PINNED_KEY] = [float(v) for v in z]
    state[PINNED_DIGIT_KEY] = None if digit is None else int(digit)
    state[PINNED_SOURCE_KEY] = source
    return True


def pinned_hand(latent_dim: int, state=None) -> tuple[np.ndarray, int | None] | None:
    """(latent (D,) float32, digit or None) pinned in this session when it fits this generator, else None."""
    state = st.session_state if state is None else state
    pinned = state.get(PINNED_KEY)
    if not isinstance(pinned, list) or len(pinned) != latent_dim:
        return None
    digit = state.get(PINNED_DIGIT_KEY)
    return np.asarray(pinned, np.float32), (int(digit) if isinstance(digit, int) and 0 <= digit <= 9 else None)
