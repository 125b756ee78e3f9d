"""Generate view: a grid of digits from the served generator, an interpolation strip, the evaluator's reading."""
from __future__ import annotations

import math
import secrets
import time
from pathlib import Path

import numpy as np
import streamlit as st

from aigc import settings
from aigc.app import hosting
from aigc.engine.sampling import generate, gif_bytes, grid, interpolate, latents
from aigc.app.common import Served, a_digit, display_scale, file_key, process_cached
from aigc.runs.files import png_bytes
from aigc.app.explore_ui import sync_query
from aigc.app.generate_explore import (EXTRA_KEYS, full_query, labeled_grid_png, link_ui, query_extras,
                                       reading_summary_ui, style_previews_ui, style_ui, styled_images)
from aigc.app.process_cache import ProcessCache
from aigc.app.tile_pin import pinned_hand, tile_pin_ui
from aigc.explore.pin import walk_from

DIGIT_OPTIONS = ["Any"] + [str(d) for d in hosting.DIGITS]
QUERY_KEYS = ("digit", "n", "seed")
STRIP_COLUMNS, FRAME_SCALE = 10, 3  # interpolation frames: 84 px each, wrapped 10 to a row
NEAREST_MAX = 10  # generated images compared with the training set per click
NEAREST_CHUNK = 10_000
GRID_CACHE_MB = 16  # rendered grids shared by every session: a viral link is computed once (bounded: memory returns)
GRIDS = ProcessCache(max_entries=1024, max_bytes=GRID_CACHE_MB * 2**20, size_of=lambda v: v[0].nbytes + len(v[1]))
# Process-level, not st.cache_*: a visitor's clear-cache message must not make everyone recompute these.
INTERPOLATIONS = ProcessCache(max_entries=64, max_bytes=8 * 2**20, size_of=lambda v: len(v[0]) + len(v[1]))
TRAINING_SETS = ProcessCache(max_entries=1)  # one MNIST file, ~50 MB


def _init_from_query() -> None:
    """Seed the widgets from the URL (?digit=7&n=16&seed=3) once per session; bad values -> defaults.

    Streamlit forgets a widget's state while another view is shown, so the last values are also
    kept under a plain session key and restored on return.
    """
    if not st.session_state.get("_gen_init"):
        raw = {key: st.query_params.get(key) for key in QUERY_KEYS}
        values, notices = hosting.parse_generate_params({k: v for k, v in raw.items() if v is not None})
        scale, sliders, extra_notices = query_extras(st.query_params)  # scale and style sliders ride in the link too
        st.session_state["_gen_last"] = dict(gen_digit="Any" if values["digit"] is None else str(values["digit"]),
                                             gen_n=values["n"], gen_seed=values["seed"], gen_trunc=scale)
        st.session_state.update(_gen_init=True, _gen_notices=notices + extra_notices, _gen_sliders=sliders)
    for key, value in st.session_state["_gen_last"].items():
        if key not in st.session_state:
            st.session_state[key] = value


def _new_seed() -> None:
    st.session_state.gen_seed = secrets.randbelow(hosting.SEED_MAX + 1)


def controls_ui(*, conditional: bool) -> dict:
    """The Generate form; returns bounded {'digit', 'n', 'seed', 'truncation'}."""
    with st.form("generate_form", border=True):
        digit = st.selectbox("Digit", DIGIT_OPTIONS, key="gen_digit", disabled=not conditional,
                             help=None if conditional else "This generator is unconditional: it draws any digit.")
        # No widget limits: the browser would refuse 500 without a word; the page says why below instead.
        n = st.number_input("How many", step=1, key="gen_n")
        seed = st.number_input("Seed", min_value=hosting.SEED_MIN, max_value=hosting.SEED_MAX, step=1,
                               key="gen_seed", help="The same seed and settings always give the same digits.")
        truncation = st.slider("Latent scale (truncation)", hosting.TRUNCATION_MIN, hosting.TRUNCATION_MAX,
                               step=0.05, key="gen_trunc", help="Below 1: cleaner, less varied digits.")
        left, right = st.columns(2)
        left.form_submit_button("Generate", type="primary", width="stretch")
        right.form_submit_button("New seed", on_click=_new_seed, width="stretch")
    values = hosting.bounded_generate_inputs(n=n, seed=seed, truncation=truncation)
    if n != values["n"]:
        st.warning(how_many_note(n, values["n"]))
    values["digit"] = None if digit == "Any" or not conditional else int(digit)
    st.session_state["_gen_last"] = dict(gen_digit=digit, gen_n=values["n"], gen_seed=values["seed"],
                                         gen_trunc=values["truncation"])
    return values


def how_many_note(asked, shown: int) -> str:
    """Why the grid has another count than the one typed (out of range, or not a whole number)."""
    return f"How many must be a whole number from {hosting.N_MIN} to {hosting.N_MAX} (got {str(asked)[:12]}): " \
           f"showing {shown}."


def link_notices_text(notices: list[str]) -> str | None:
    """All of a link's ignored parameters in one line (None when there are none)."""
    if not notices:
        return None
    return f"Link parameter{'s' if len(notices) > 1 else ''} ignored: " + " ".join(notices)


def generate_ui(served: Served) -> np.ndarray:
    """The Generate view; returns the images shown, (n, 28, 28) in [0, 1]."""
    _init_from_query()
    notices = link_notices_text(st.session_state.pop("_gen_notices", []))
    if notices:
        st.warning(notices)
    conditional = bool(served.config.conditional)
    controls, picture_area = st.columns([1, 2.2], gap="large")
    with controls:
        values = controls_ui(conditional=conditional)
        sliders, shift = style_ui(served, st.session_state.get("_gen_sliders", {}), values)
    start = time.perf_counter()
    images, picture_png, columns, reading = rendered_grid(served, values, shift)
    elapsed_ms = (time.perf_counter() - start) * 1000
    with picture_area:
        what = "any digit" if values["digit"] is None else f"digit {values['digit']}"
        st.image(picture_png, caption=f"{len(images)} x {what} - seed {values['seed']} - "
                 f"scale {values['truncation']:.2f} - {served.label} - {elapsed_ms:.0f} ms", output_format="PNG")
        # A callable is only run when the button is clicked: no 4x PNG on every rerun.
        st.download_button("Download PNG", lambda: png_bytes(grid(images, columns, scale=4)), mime="image/png",
                           file_name=f"digits_{values['digit'] if values['digit'] is not None else 'any'}"
                                     f"_seed{values['seed']}.png", key="download_grid")
        reading_summary_ui(reading, values["digit"])
        style_previews_ui(served, values)
        nearest_ui(images)
        if conditional:
            tile_pin_ui(served, values, shift, picture_png, columns)
        query = full_query(values, sliders, st.session_state.get("_generator_label"))
        link_ui(query)
    sync_query({k: v for k, v in query.items() if k != "view"}, QUERY_KEYS + EXTRA_KEYS)
    return images


def rendered_grid(served: Served, values: dict, shift: np.ndarray | None = None):
    """(images (n, 28, 28) float32 in [0, 1], read-only; labeled grid PNG; columns; the evaluator's Reading or None).

    A grid depends only on (generator file, digit, n, seed, scale, style shift): every session shares it.
    """
    columns = min(10, math.ceil(math.sqrt(values["n"])))
    scale = display_scale(columns=columns)
    key = file_key(served.path) + (values["digit"], values["n"], values["seed"],
           round(float(values["truncation"]), 6), scale,
           None if shift is None or not np.any(shift) else tuple(np.round(shift, 6).tolist()))

    def make():
        if shift is None or not np.any(shift):
            images, _labels = generate(served.model, values["n"], values["digit"], seed=values["seed"],
                                       truncation=values["truncation"], config=served.config)
        else:  # style sliders moved: the same latents, shifted
            images, _labels, _z = styled_images(served, values, shift)
        images = np.asarray(images, dtype=np.float32)
        images.setflags(write=False)  # shared between sessions
        picture, reading = labeled_grid_png(images, values["digit"], columns=columns, scale=scale)
        return images, picture, reading

    images, picture_png, reading = GRIDS.get_or_make(key, make)
    return images, picture_png, columns, reading


def interpolation_media(served: Served, *, pinned: tuple | None = None, **settings) -> tuple[bytes, bytes]:
    """(strip PNG, animated GIF) of one interpolation, shared by every session per (file, mtime, settings).

    pinned: (latent (D,), digit or None) replaces end A (seed_a, digit_a) with a pinned tile's hand.
    """
    def make():
        if pinned is None:
            frames = interpolate(served.model, config=served.config, **settings)
        else:
            z_b = latents(1, len(pinned[0]), seed=settings["seed_b"], truncation=settings["truncation"])[0]
            label_a = pinned[1] if pinned[1] is not None else settings["digit_b"]  # a pin without a digit keeps B's
            frames = walk_from(served.model, pinned[0], label_a, z_b, settings["digit_b"], steps=settings["steps"])
        return png_bytes(interpolation_strip(frames)), gif_bytes(frames, scale=6)

    pin_key = None if pinned is None else (tuple(np.round(pinned[0], 5).tolist()), pinned[1])
    return INTERPOLATIONS.get_or_make(file_key(served.path) + tuple(sorted(settings.items())) + (pin_key,), make)


def interpolation_strip(frames: np.ndarray) -> np.ndarray:
    """Frames (N, 28, 28) in [0, 1] as rows of at most STRIP_COLUMNS, each frame FRAME_SCALE x 28 px (legible)."""
    return grid(frames, min(len(frames), STRIP_COLUMNS), scale=FRAME_SCALE)


def interpolation_ui(served: Served) -> None:
    """A strip of frames walking (slerp) between two seeds and, for a conditional generator, two digits."""
    conditional = bool(served.config.conditional)
    with st.expander("Interpolate between two seeds / digits", expanded=False):
        pinned = pinned_hand(int(served.model.inputs[0].shape[-1])) if conditional else None
        if pinned is not None and not st.checkbox(f"Start from my pinned tile ({pinned_label(pinned)})", value=True,
                                                  key="interp_from_pin", help="Click a tile above to pin another."):
            pinned = None
        with st.form("interp_form", border=False):
            a, b, c = st.columns(3)
            seed_a = a.number_input("Seed A", hosting.SEED_MIN, hosting.SEED_MAX, value=1, step=1, key="interp_a")
            seed_b = b.number_input("Seed B", hosting.SEED_MIN, hosting.SEED_MAX, value=2, step=1, key="interp_b")
            steps = c.slider("Frames", hosting.STEPS_MIN, hosting.STEPS_MAX, hosting.STEPS_DEFAULT, key="interp_steps")
            digit_a = a.selectbox("Digit A", DIGIT_OPTIONS[1:], index=1, key="interp_da", disabled=not conditional)
            digit_b = b.selectbox("Digit B", DIGIT_OPTIONS[1:], index=7, key="interp_db", disabled=not conditional)
            st.form_submit_button("Interpolate")
        bounded = hosting.bounded_generate_inputs(n=1, seed=seed_a, truncation=st.session_state.get("gen_trunc", 1.0),
                                                  steps=steps)
        seed_b = hosting.bounded_generate_inputs(n=1, seed=seed_b, truncation=1.0)["seed"]
        strip, animation = interpolation_media(
            served, seed_a=bounded["seed"], seed_b=seed_b,
            digit_a=int(digit_a) if conditional else None, digit_b=int(digit_b) if conditional else None,
            steps=bounded["steps"], truncation=bounded["truncation"], pinned=pinned)
        start = f"my pinned tile ({pinned_label(pinned)}) to seed" if pinned is not None else f"seed {bounded['seed']} to"
        st.image(strip, caption=f"{bounded['steps']} frames, {start} {seed_b}", output_format="PNG")
        left, right = st.columns([1, 3])
        left.image(animation, caption="animated", output_format="auto")
        right.download_button("Download GIF", animation, mime="image/gif", file_name="interpolation.gif",
                              key="download_gif")


def pinned_label(pinned: tuple) -> str:
    """'a 7' for a pinned hand with its digit, 'its digit' when none was recorded."""
    return a_digit(pinned[1]) if pinned[1] is not None else "its digit"


def training_images(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x_train (N, 784) uint8, squared norms (N,) float32) of the MNIST file, loaded once per process per mtime."""
    def make():
        from aigc.engine.data import load_mnist

        x_train = load_mnist(str(path))[0].reshape(-1, 28 * 28)
        norms = np.einsum("ij,ij->i", x_train.astype(np.float32) / 255, x_train.astype(np.float32) / 255)
        x_train.setflags(write=False)
        norms.setflags(write=False)  # shared between sessions
        return x_train, norms

    return process_cached(TRAINING_SETS, file_key(path), make, spinner="Loading the training images...")


def nearest_training(images: np.ndarray, x_train: np.ndarray, norms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices (N,), L2 distances (N,)) of the closest training image to each (N, 28, 28) image in [0, 1]."""
    queries = images.reshape(len(images), -1).astype(np.float32)
    best_index = np.zeros(len(queries), np.int64)
    best = np.full(len(queries), np.inf, np.float32)
    query_norms = np.einsum("ij,ij->i", queries, queries)
    for start in range(0, len(x_train), NEAREST_CHUNK):
        chunk = x_train[start:start + NEAREST_CHUNK].astype(np.float32) / 255
        distances = query_norms[:, None] - 2 * queries @ chunk.T + norms[None, start:start + len(chunk)]
        index = distances.argmin(axis=1)
        value = distances[np.arange(len(queries)), index]
        better = value < best
        best[better], best_index[better] = value[better], index[better] + start
    return best_index, np.sqrt(np.maximum(best, 0))


def nearest_ui(images: np.ndarray) -> None:
    """Memorisation check: each generated digit beside its nearest MNIST training image (needs $AIGC_MNIST)."""
    path = settings.mnist_env_path() or Path("")
    if not path.is_file():
        return
    with st.expander("Nearest training images (is it copying?)"):
        if not st.button(f"Compare the first {min(len(images), NEAREST_MAX)} with the training set", key="nearest"):
            st.caption("Top row: generated. Bottom row: the closest MNIST training image (L2 distance in pixels).")
            return
        x_train, norms = training_images(path)
        shown = images[:NEAREST_MAX]
        index, distance = nearest_training(shown, x_train, norms)
        pairs = np.concatenate([shown, x_train[index].reshape(-1, 28, 28).astype(np.float32) / 255])
        st.image(png_bytes(grid(pairs, len(shown), scale=display_scale(columns=len(shown), target_px=700))),
                 caption="distances: " + ", ".join(f"{d:.1f}" for d in distance), output_format="PNG")
