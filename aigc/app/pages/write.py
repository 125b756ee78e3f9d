"""Write a number: the typed digits in one hand per row (one latent per row), style sliders, a shareable link."""
from __future__ import annotations

import secrets

import numpy as np
import streamlit as st

from aigc.app.explain import how_it_works
from aigc.app.routes import Frame, sync_query
from aigc.app.widgets import (copy_link_ui, dimmed, directions_of, guarded, labeled_png, picture_png, pinned_hand,
                              preview_pngs, reading_caption, results_first_on_phones, sliders_ui, whole_number_input)
from aigc.serve.caches import WRITTEN, file_key
from aigc.serve.generators import Served
from aigc.explore import directions as dirs
from aigc.explore.layout import ROWS_MAX, ROWS_MIN, parse_number, style_latents, write_number
from aigc.explore.params import SCALE_MAX, SCALE_MIN, SEED_MAX, SEED_MIN, TEXT_MAX_CHARS, parse_write_params, write_query

OWNED_KEYS = ("text", "rows", "seed", "scale") + dirs.NAMES
PAGE_SCALE = 4
RESULT_KEY = "write_result"
LAST_KEY = "_write_last_ok"  # the last settings that wrote a number: kept on screen, dimmed, while the text is not one


def page(frame: Frame) -> None:
    """The Write-a-number page."""
    guarded(write_ui, frame.served, name="Write a number")


def _init_from_query() -> None:
    """Seed the widgets from the URL once per session (forged values -> defaults with a notice)."""
    if st.session_state.get("_write_init"):
        return
    values, notices = parse_write_params({key: st.query_params.get(key) for key in OWNED_KEYS
                                          if st.query_params.get(key) is not None})
    st.session_state.update(write_text=values["text"], write_rows=values["rows"], write_seed=values["seed"],
                            write_scale=values["scale"], _write_init=True, _write_notices=notices,
                            **{f"write_{name}": values[name] for name in dirs.NAMES})


def _new_styles() -> None:
    st.session_state.write_seed = secrets.randbelow(SEED_MAX + 1)


def controls_ui(served: Served) -> tuple[dict | None, np.ndarray | None]:
    """The Write-a-number form (every control waits for Write); returns (bounded values with the sliders, or None
    with one line when the text is not a number; the pinned latent or None)."""
    with st.form("write_form", border=True):
        # No max_chars: the browser would cut a pasted text without a word; the page says what it read instead.
        text = st.text_input("Number", key="write_text", help="Digits only, up to 16; each row writes them in one hand.")
        rows = st.slider("Rows (one hand each)", ROWS_MIN, ROWS_MAX, key="write_rows")
        seed = whole_number_input("Seed", SEED_MIN, SEED_MAX, key="write_seed")
        scale = st.slider("Latent scale", SCALE_MIN, SCALE_MAX, step=0.05, key="write_scale")
        with st.expander("Style sliders", expanded=True):
            sliders = sliders_ui("write", {})
        pinned = _pinned(served)
        left, right = st.columns(2)
        left.form_submit_button("Write", type="primary", width="stretch")
        right.form_submit_button("New hands", on_click=_new_styles, width="stretch")
    text = str(text or "")
    if len(text) > TEXT_MAX_CHARS:
        st.warning(f"The text had {len(text)} characters: it was cut to its first {TEXT_MAX_CHARS}.")
        text = text[:TEXT_MAX_CHARS]
    digits, problem = parse_number(text)
    if problem:
        st.warning(problem)
        return None, pinned
    return {"text": digits, "rows": int(np.clip(rows, ROWS_MIN, ROWS_MAX)), "seed": int(np.clip(seed, SEED_MIN, SEED_MAX)),
            "scale": float(np.clip(scale, SCALE_MIN, SCALE_MAX)), **sliders}, pinned


def _pinned(served: Served) -> np.ndarray | None:
    """The pinned latent when it fits this generator and the visitor keeps it on."""
    pinned = pinned_hand(served.latent_dim)
    if pinned is None:
        return None
    if not st.checkbox("Row 1 in my pinned hand", value=True, key="write_use_pinned",
                       help="A hand pinned in Draw a digit (or from a Generate tile)."):
        return None
    return pinned[0]


def written(served: Served, text: str, rows: int, seed: int, scale: float, shift: tuple,
            pinned: tuple | None) -> tuple[np.ndarray, np.ndarray]:
    """(digits (rows, n, 28, 28), page (H, W)) in [0, 1], read-only, shared per generator file and settings."""
    def make():
        images, page = write_number(served.model, text, latent_dim=served.latent_dim, rows=rows, seed=seed, truncation=scale,
                                    shift=np.array(shift, np.float32),
                                    first_style=None if pinned is None else np.array(pinned, np.float32))
        for array in (images, page):
            array.setflags(write=False)  # shared between sessions
        return images, page

    return WRITTEN.get_or_make(file_key(served.path) + (text, rows, seed, scale, shift, pinned), make)


def write_ui(served: Served) -> None:
    """The Write-a-number view."""
    how_it_works("write")
    if not served.config.conditional:
        st.info("Write a number needs a class-conditional generator; this one draws any digit.")
        return
    _init_from_query()
    for notice in st.session_state.pop("_write_notices", []):
        st.warning(f"Link parameter ignored: {notice}")
    controls, area = st.columns([1, 2.2], gap="large")
    with controls:
        values, pinned = controls_ui(served)
    results_first_on_phones(RESULT_KEY)
    fresh = values is not None
    if fresh:
        st.session_state[LAST_KEY] = (values, None if pinned is None else [float(v) for v in pinned])
    elif isinstance(st.session_state.get(LAST_KEY), tuple):
        values, pinned = st.session_state[LAST_KEY]  # kept on screen, dimmed, while the text is not a number
        pinned = None if pinned is None else np.asarray(pinned, np.float32)
    else:
        return
    shift = dirs.shift(directions_of(served), {name: values[name] for name in dirs.NAMES})
    images, page = written(served, values["text"], values["rows"], values["seed"], values["scale"],
                           tuple(round(float(v), 6) for v in shift),
                           None if pinned is None else tuple(round(float(v), 6) for v in pinned))
    with area, st.container(key=RESULT_KEY):
        if not fresh:
            dimmed(RESULT_KEY)
            st.caption(f"Still showing the last number written, '{values['text']}': the text above is not a number.")
        _page_ui(page, images, values)
    with controls:
        _previews_ui(served, values, pinned)
    query = write_query(values)
    sync_query(query, OWNED_KEYS)
    with area:
        copy_link_ui(query, page="write")


def _page_ui(page: np.ndarray, images: np.ndarray, values: dict) -> None:
    rows, count = images.shape[:2]
    hands = f"{rows} hand{'s' if rows > 1 else ''}"
    st.image(picture_png(page, scale=PAGE_SCALE), output_format="PNG",
             caption=f"'{values['text']}' in {hands} - seed {values['seed']} - scale {values['scale']:.2f}",
             alt=f"The number {values['text']} handwritten by the generator in {hands}, one per row.")
    st.download_button("Download PNG", lambda: picture_png(page, scale=PAGE_SCALE), mime="image/png",
                       file_name=f"number_{values['text']}_seed{values['seed']}.png", key="write_download")
    requested = np.tile(np.array([int(c) for c in values["text"]]), rows)
    tiles, reading = labeled_png(images.reshape(-1, 28, 28), requested, ncol=count, scale=3)
    st.caption(reading_caption(reading, requested))
    with st.expander("Each digit as the evaluator reads it", expanded=bool(reading is not None and reading.doubt.any())):
        st.image(tiles, output_format="PNG", alt="Each generated digit with the evaluator's label and confidence.")


def _previews_ui(served: Served, values: dict, pinned: np.ndarray | None) -> None:
    """A small strip per slider: the first typed digit, row 1's hand, at -2 ... +2 along the direction."""
    z = pinned if pinned is not None else style_latents(1, served.latent_dim,
                                                          seed=values["seed"], truncation=values["scale"])[0]
    for name, strip in zip(dirs.NAMES, preview_pngs(served, z, int(values["text"][0]))):
        st.image(strip, output_format="PNG", caption=f"{dirs.LABELS[name]}: -2 ... +2",
                 alt=f"Row 1's {values['text'][0]} drawn five times, {dirs.LABELS[name].lower()} from -2 to +2.")
