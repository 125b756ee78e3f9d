"""/generate: a grid of digits from the served generator, the evaluator's reading, style sliders, pinning, interpolation."""
from __future__ import annotations

import hashlib
import math
import secrets
import time
from pathlib import Path

import numpy as np
import streamlit as st

from aigc import settings
from aigc.app.explain import how_it_works
from aigc.app.routes import Frame, ascii_values, sync_query
from aigc.app.widgets import (a_digit, copy_link_ui, directions_of, display_scale, guarded, pin, pinned_hand,
                              preview_pngs, reading_of, results_first_on_phones, sliders_ui, spinner_unless, toast,
                              whole_number_input)
from aigc.engine.sampling import GRID_PAD, generate, gif_bytes, grid, interpolate, latents, run_generator
from aigc.explore import directions as dirs
from aigc.explore.nearest import nearest_training, squared_norms
from aigc.explore import params
from aigc.explore.params import full_query, query_extras
from aigc.explore.pin import picked_tile, picker_figure, tile_latents, walk_from
from aigc.explore.reading import percent, tile_texts
from aigc.explore.tiles import annotate_grid
from aigc.runs.files import png_bytes
from aigc.serve.caches import GRIDS, INTERPOLATIONS, TRAINING_SETS, file_key
from aigc.serve.generators import Served

DIGIT_OPTIONS = ["Any"] + [str(d) for d in params.DIGITS]
QUERY_KEYS = ("digit", "n", "seed")
NUMBER_KEYS = ("scale",) + dirs.NAMES  # the link's other numbers
EXTRA_KEYS = ("generator",) + NUMBER_KEYS
STRIP_COLUMNS, FRAME_SCALE = 10, 3  # interpolation frames: 84 px each, wrapped 10 to a row
NEAREST_MAX = 10  # generated images compared with the training set per click
LABEL_SCALE_MIN = 3  # tiles are drawn at least 3x so their labels stay legible when the browser shrinks them
NUMBER_FIELDS = {"gen_n": ("How many", "n"), "gen_seed": ("Seed", "seed"),  # widget key: label, bounded as
                 "interp_a": ("Seed A", "seed"), "interp_b": ("Seed B", "seed")}
NOTES_KEY = "_gen_number_notes"  # {widget key: why its value was replaced on submit}, shown once
RESULT_KEY = "gen_result"  # the grid's column: first on a phone
LABELED_TILES_MAX = 36  # larger grids are shrunk so far that the labels would cover the digits: listed below instead
FLAGGED_LISTED = 20


def page(frame: Frame) -> None:
    """The Generate page: the grid and its panels, then the interpolation."""
    guarded(generate_ui, frame.served, name="Generate")
    guarded(interpolation_ui, frame.served, name="Interpolation")


def _init_from_query() -> None:
    """Seed the widgets from the URL (?digit=7&n=16&seed=3) once per session; bad values -> defaults.

    Streamlit forgets a widget's state while another view is shown, so the last values are also
    kept under a plain session key and restored on return.
    """
    if not st.session_state.get("_gen_init"):
        raw, notices = ascii_values(st.query_params, QUERY_KEYS + NUMBER_KEYS)
        values, number_notices = params.parse_generate_params({key: raw[key] for key in QUERY_KEYS if key in raw})
        scale, sliders, extra_notices = query_extras(raw)  # scale and style sliders ride in the link too
        notices += number_notices
        st.session_state["_gen_last"] = dict(gen_digit="Any" if values["digit"] is None else str(values["digit"]),
                                             gen_n=values["n"], gen_seed=values["seed"], gen_trunc=scale)
        st.session_state.update(_gen_init=True, _gen_notices=notices + extra_notices, _gen_sliders=sliders)
    for key, value in st.session_state["_gen_last"].items():
        if key not in st.session_state:
            st.session_state[key] = value


def _new_seed() -> None:
    st.session_state.gen_seed = secrets.randbelow(params.SEED_MAX + 1)
    _snap("gen_n")


def _snap(*keys: str) -> None:
    """On submit: a number the page cannot show is replaced in its field by the one shown, with a note why."""
    for key in keys:
        shown, note = shown_number(key, st.session_state.get(key))
        if note:
            st.session_state[key] = float(shown)
            st.session_state.setdefault(NOTES_KEY, {})[key] = note


def shown_number(key: str, typed) -> tuple[int, str | None]:
    """(the whole number the field `key` shows as, bounded by explore.params; why, when it is not what was typed).

    The number inputs have no limits on purpose: the browser would keep the old value with only a red field.
    """
    label, kind = NUMBER_FIELDS[key]
    shown = params.bounded_generate_inputs(n=typed, seed=typed, truncation=1.0)[kind]
    if typed is None or typed == shown:
        return shown, None
    low, high, unit = (params.N_MIN, params.N_MAX, "") if kind == "n" else (params.SEED_MIN, params.SEED_MAX, "seed ")
    if isinstance(typed, float) and typed.is_integer():
        typed = int(typed)  # the widget holds floats: 500.0 reads as 500
    text = f"{typed:g}" if isinstance(typed, float) else str(typed)
    return shown, f"{label} must be a whole number from {low} to {high} (got {text[:16]}): showing {unit}{shown}."


def number_notes_ui(*keys: str) -> None:
    """A warning per field whose value was replaced on submit (or still differs from what the page shows)."""
    notes = st.session_state.get(NOTES_KEY, {})
    for key in keys:
        note = notes.pop(key, None) or shown_number(key, st.session_state.get(key))[1]
        if note:
            st.warning(note)


def controls_ui(served: Served, *, conditional: bool) -> tuple[dict, dict, np.ndarray]:
    """The Generate form, every control waiting for its buttons: (bounded {'digit', 'n', 'seed', 'truncation'},
    the style sliders {name: value}, their latent shift (D,))."""
    with st.form("generate_form", border=True):
        digit = st.selectbox("Digit", DIGIT_OPTIONS, key="gen_digit", disabled=not conditional,
                             help=None if conditional else "This generator is unconditional: it draws any digit.")
        # No widget limits: the browser would refuse 500 without a word; the page says why below instead.
        n = whole_number_input("How many", key="gen_n")
        seed = whole_number_input("Seed", key="gen_seed", help="The same seed and settings always give the same digits.")
        truncation = st.slider("Latent scale (truncation)", params.SCALE_MIN, params.SCALE_MAX,
                               step=0.05, key="gen_trunc", help="Below 1: cleaner, less varied digits.")
        sliders, shift = style_ui(served, st.session_state.get("_gen_sliders", {}))
        left, right = st.columns(2)
        left.form_submit_button("Generate", type="primary", width="stretch", on_click=_snap, args=("gen_n", "gen_seed"))
        right.form_submit_button("New seed", on_click=_new_seed, width="stretch")
    values = params.bounded_generate_inputs(n=n, seed=seed, truncation=truncation)
    number_notes_ui("gen_n", "gen_seed")
    values["digit"] = None if digit == "Any" or not conditional else int(digit)
    st.session_state["_gen_last"] = dict(gen_digit=digit, gen_n=values["n"], gen_seed=values["seed"],
                                         gen_trunc=values["truncation"])
    return values, sliders, shift


def link_notices_text(notices: list[str]) -> str | None:
    """All of a link's ignored parameters in one line (None when there are none)."""
    if not notices:
        return None
    return f"Link parameter{'s' if len(notices) > 1 else ''} ignored: " + " ".join(notices)


def generate_ui(served: Served) -> np.ndarray:
    """The Generate view; returns the images shown, (n, 28, 28) in [0, 1]."""
    how_it_works("generate")
    _init_from_query()
    notices = link_notices_text(st.session_state.pop("_gen_notices", []))
    if notices:
        st.warning(notices)
    conditional = bool(served.config.conditional)
    controls, picture_area = st.columns([1, 2.2], gap="large")
    with controls:
        values, sliders, shift = controls_ui(served, conditional=conditional)
    images, picture_png, columns, reading, timing = timed_grid(served, values, shift)
    results_first_on_phones(RESULT_KEY)
    with picture_area, st.container(key=RESULT_KEY):
        what = "any digit" if values["digit"] is None else f"digit {values['digit']}"
        caption = f"{len(images)} x {what} - seed {values['seed']} - scale {values['truncation']:.2f} - {served.label} - {timing}"
        if not (conditional and tile_pin_ui(served, values, shift, picture_png, columns, caption)):
            st.image(picture_png, caption=caption, output_format="PNG",
                     alt=f"A grid of {len(images)} generated handwritten digits ({what}).")
        # A callable is only run when the button is clicked: no 4x PNG on every rerun.
        st.download_button("Download PNG", lambda: png_bytes(grid(images, columns, scale=4)), mime="image/png",
                           file_name=f"digits_{values['digit'] if values['digit'] is not None else 'any'}"
                                     f"_seed{values['seed']}.png", key="download_grid")
        reading_summary_ui(reading, values["digit"])
        style_previews_ui(served, values)
        nearest_ui(images)
        query = full_query(values, sliders, st.session_state.get("_generator_label"))
        copy_link_ui(query, page="generate")
    sync_query({k: v for k, v in query.items() if k != "view"}, QUERY_KEYS + EXTRA_KEYS)
    return images


def rendered_grid(served: Served, values: dict, shift: np.ndarray | None = None):
    """(images (n, 28, 28) float32 in [0, 1], read-only; labeled grid PNG; columns; the evaluator's Reading or None)."""
    return timed_grid(served, values, shift)[:4]


def timed_grid(served: Served, values: dict, shift: np.ndarray | None = None):
    """rendered_grid's four values and 'made in 120 ms', or 'cached (made in 120 ms)' when an earlier run made it.

    A grid depends only on (generator file, digit, n, seed, scale, style shift): every session shares it.
    """
    columns = min(10, math.ceil(math.sqrt(values["n"])))
    scale = display_scale(columns=columns)
    key = file_key(served.path) + (values["digit"], values["n"], values["seed"],
           round(float(values["truncation"]), 6), scale,
           None if shift is None or not np.any(shift) else tuple(np.round(shift, 6).tolist()))
    made_now = []

    def make():
        served.model  # loaded first (a cold server's first click): "made in" is the drawing, not the load
        start = time.perf_counter()
        if shift is None or not np.any(shift):
            images, _labels = generate(served.model, values["n"], values["digit"], seed=values["seed"],
                                       truncation=values["truncation"], config=served.config)
        else:  # style sliders moved: the same latents, shifted
            images, _labels, _z = styled_images(served, values, shift)
        images = np.asarray(images, dtype=np.float32)
        images.setflags(write=False)  # shared between sessions
        picture, reading = labeled_grid_png(images, values["digit"], columns=columns, scale=scale)
        made_now.append(True)
        return images, picture, reading, (time.perf_counter() - start) * 1000

    images, picture_png, reading, made_ms = GRIDS.get_or_make(key, make)
    timing = f"made in {made_ms:.0f} ms"
    return images, picture_png, columns, reading, timing if made_now else f"cached ({timing})"


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
        pinned = pinned_hand(served.latent_dim) if conditional else None
        if pinned is not None and not st.checkbox(f"Start from my pinned tile ({pinned_label(pinned)})", value=True,
                                                  key="interp_from_pin", help="Click a tile above to pin another."):
            pinned = None
        with st.form("interp_form", border=False):
            a, b, c = st.columns(3)
            from_pin = {"disabled": True, "help": "Taken from the pinned tile: untick 'Start from my pinned tile' "
                        "to choose."} if pinned is not None else {}
            seed_a = whole_number_input("Seed A", value=1, key="interp_a", container=a, **from_pin)
            seed_b = whole_number_input("Seed B", value=2, key="interp_b", container=b)
            steps = c.slider("Frames", params.STEPS_MIN, params.STEPS_MAX, params.STEPS_DEFAULT, key="interp_steps")
            digit_a = a.selectbox("Digit A", DIGIT_OPTIONS[1:], index=1, key="interp_da",
                                  **(from_pin or {"disabled": not conditional}))
            digit_b = b.selectbox("Digit B", DIGIT_OPTIONS[1:], index=7, key="interp_db", disabled=not conditional)
            st.form_submit_button("Interpolate", on_click=_snap, args=("interp_a", "interp_b"))
        bounded = params.bounded_generate_inputs(n=1, seed=seed_a, truncation=st.session_state.get("gen_trunc", 1.0),
                                                  steps=steps)
        seed_b = params.bounded_generate_inputs(n=1, seed=seed_b, truncation=1.0)["seed"]
        number_notes_ui(*(("interp_b",) if pinned is not None else ("interp_a", "interp_b")))
        strip, animation = interpolation_media(
            served, seed_a=bounded["seed"], seed_b=seed_b,
            digit_a=int(digit_a) if conditional else None, digit_b=int(digit_b) if conditional else None,
            steps=bounded["steps"], truncation=bounded["truncation"], pinned=pinned)
        start = f"my pinned tile ({pinned_label(pinned)}) to seed" if pinned is not None else f"seed {bounded['seed']} to"
        st.image(strip, caption=f"{bounded['steps']} frames, {start} {seed_b}", output_format="PNG",
                 alt=f"{bounded['steps']} generated digits morphing step by step from {start} {seed_b}.")
        left, right = st.columns([1, 3])
        left.image(animation, caption="animated", output_format="auto", alt="The same morph as an animation.")
        right.download_button("Download GIF", animation, mime="image/gif", file_name="interpolation.gif",
                              key="download_gif")


def pinned_label(pinned: tuple) -> str:
    """'a 7' for a pinned hand with its digit, 'its digit' when none was recorded."""
    return a_digit(pinned[1]) if pinned[1] is not None else "its digit"


def training_images(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(x_train (N, 784) uint8, squared norms (N,) float32) of the MNIST file, loaded once per process per mtime."""
    def make():
        from aigc.engine.data import load_mnist  # only on a click: the page opens without reading MNIST

        x_train = load_mnist(str(path))[0].reshape(-1, 28 * 28)
        norms = squared_norms(x_train)
        x_train.setflags(write=False)
        norms.setflags(write=False)  # shared between sessions
        return x_train, norms

    key = file_key(path)
    with spinner_unless(key in TRAINING_SETS, "Loading the training images..."):
        return TRAINING_SETS.get_or_make(key, make)


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
                 caption="distances: " + ", ".join(f"{d:.1f}" for d in distance), output_format="PNG",
                 alt="Top row: generated digits. Bottom row: the nearest MNIST training image to each.")


def styled_images(served: Served, values: dict, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, 28, 28) in [0, 1], labels (n,), z (n, D)) for the Generate settings moved by shift (D,)."""
    z, labels = tile_latents(served.latent_dim, n=values["n"], digit=values["digit"],
                             seed=values["seed"], truncation=values["truncation"], shift=shift)
    conditional = bool(served.config.conditional)
    return run_generator(served.model, z, labels if conditional else None), labels, z


def labeled_grid_png(images: np.ndarray, requested, *, columns: int, scale: int) -> tuple[bytes, object]:
    """(PNG of the grid, each tile's reading drawn on it up to LABELED_TILES_MAX tiles; Reading or None).

    Same layout as sampling.grid (the tile picker relies on it).
    """
    scale = max(scale, LABEL_SCALE_MIN)
    picture = grid(images, columns, scale=scale)
    reading = reading_of(images, requested)
    if reading is None or len(images) > LABELED_TILES_MAX:
        return png_bytes(picture), reading
    return png_bytes(annotate_grid(picture, tile_texts(reading), reading.doubt, ncol=columns, scale=scale,
                                   pad=GRID_PAD)), reading


def reading_summary_ui(reading, requested: int | None) -> None:
    """One line under the grid: how many read as asked (or the class counts) and how many are flagged."""
    if reading is None:
        return
    flagged = f"{int(reading.doubt.sum())} flagged (red: doubtful or unlike MNIST, {int(reading.ood.sum())} unlike)"
    if requested is not None:
        hits = int(np.sum(reading.labels == requested))
        st.markdown(f"**Evaluator:** {hits}/{len(reading.labels)} read as {a_digit(requested)} "
                    f"(calibrated mean confidence {percent(reading.confidence.mean())}); {flagged}.")
    else:
        counts = np.bincount(reading.labels, minlength=10)
        st.markdown("**Evaluator reads:** " + ", ".join(f"{d}: {c}" for d, c in enumerate(counts) if c) + f"; {flagged}.")
    if len(reading.labels) > LABELED_TILES_MAX:
        st.caption(reading_note(reading))


def reading_note(reading) -> str:
    """Why a large grid has no labels on its tiles, and which tiles (numbered from 1) are flagged."""
    flagged = [str(index + 1) for index in np.flatnonzero(reading.doubt)]
    listed = ", ".join(flagged[:FLAGGED_LISTED]) + (f" and {len(flagged) - FLAGGED_LISTED} more"
                                                    if len(flagged) > FLAGGED_LISTED else "")
    return (f"Readings are not drawn on grids over {LABELED_TILES_MAX} tiles: they would cover the digits. "
            + (f"Flagged tiles (counting from 1, row by row): {listed}." if flagged else "No tile is flagged."))


def style_ui(served: Served, defaults: dict) -> tuple[dict, np.ndarray]:
    """The style sliders with preview strips (conditional generators); returns (slider values, latent shift (D,))."""
    latent_dim = served.latent_dim
    if not served.config.conditional:
        return {}, np.zeros(latent_dim, np.float32)
    with st.expander("Style sliders", expanded=any(defaults.values())):
        sliders = sliders_ui("gen", defaults)
    return sliders, dirs.shift(directions_of(served), sliders)


def style_previews_ui(served: Served, values: dict) -> None:
    """Under the grid: a small strip per slider, the first tile's latent at -2 ... +2 along each direction."""
    if not served.config.conditional:
        return
    z, labels = tile_latents(served.latent_dim, n=values["n"], digit=values["digit"], seed=values["seed"],
                             truncation=values["truncation"])
    digit = int(labels[0])  # with Digit = Any: the first tile's own digit
    with st.container(border=True):
        st.caption(f"Style sliders, previewed on the first tile's hand ({a_digit(digit)})")
        for column, name, strip in zip(st.columns(len(dirs.NAMES)), dirs.NAMES, preview_pngs(served, z[0], digit)):
            column.image(strip, output_format="PNG", caption=f"{dirs.LABELS[name]}: -2 ... +2",
                         alt=f"The first tile's {digit} drawn five times, {dirs.LABELS[name].lower()} from -2 to +2.")


def tile_pin_ui(served: Served, values: dict, shift: np.ndarray, picture_png: bytes, columns: int, caption: str) -> bool:
    """A switch that turns the grid itself into a picker: clicking a tile pins its hand. True when the grid was shown."""
    if not st.toggle("Pin a tile's hand: click a tile", key="gen_pick",
                     help="The grid becomes clickable: Interpolate can start from a tile, and Write a number writes "
                          "row 1 in its hand."):
        return False
    grid_id = (values["digit"], values["n"], values["seed"], round(float(values["truncation"]), 6),
               tuple(np.round(shift, 4).tolist()))
    event = st.plotly_chart(picker_figure(picture_png, n=values["n"], columns=columns), width="content",
                            on_select="rerun", selection_mode="points", config={"displayModeBar": False},
                            key="gen_pin_grid_" + hashlib.sha1(repr(grid_id).encode()).hexdigest()[:12])  # a new grid starts with nothing selected
    st.caption(caption)
    tile = picked_tile(event, values["n"])
    if tile is None:
        return True
    z, labels = tile_latents(served.latent_dim, n=values["n"], digit=values["digit"],
                             seed=values["seed"], truncation=values["truncation"], shift=shift)
    if pin(z[tile], int(labels[tile]), source=(grid_id, tile)):
        toast(f"tile {tile + 1} pinned ({a_digit(int(labels[tile]))}): Interpolate and Write a number can use it.")
    st.markdown(f"**Tile {tile + 1} pinned** ({a_digit(int(labels[tile]))}).")
    return True
