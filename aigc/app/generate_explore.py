"""Explore additions to the Generate view: labels on tiles with doubt flags, style sliders with previews, full links."""
from __future__ import annotations

import numpy as np
import streamlit as st

from aigc.app.common import Served, a_digit
from aigc.app.explore_ui import copy_link_ui, directions_of, preview_pngs, reading_of, sliders_ui
from aigc.engine.sampling import GRID_PAD, grid, latents, run_generator
from aigc.explore import directions as dirs
from aigc.explore.pin import tile_latents
from aigc.explore.params import parse_scale, parse_slider_params
from aigc.explore.reading import percent, tile_texts
from aigc.explore.tiles import annotate_grid
from aigc.runs.files import png_bytes

LABEL_SCALE_MIN = 3  # tiles are drawn at least 3x so their labels stay legible when the browser shrinks them
EXTRA_KEYS = ("scale", "generator") + dirs.NAMES


def query_extras(params) -> tuple[float, dict, list[str]]:
    """(latent scale, slider values, notices) from the URL's scale and ink/slant/width (forged values -> defaults)."""
    notices: list[str] = []
    raw = {key: params.get(key) for key in ("scale",) + dirs.NAMES if params.get(key) is not None}
    return parse_scale(raw, notices), parse_slider_params(raw, notices), notices


def styled_images(served: Served, values: dict, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images (n, 28, 28) in [0, 1], labels (n,), z (n, D)) for the Generate settings moved by shift (D,)."""
    z, labels = tile_latents(int(served.model.inputs[0].shape[-1]), n=values["n"], digit=values["digit"],
                             seed=values["seed"], truncation=values["truncation"], shift=shift)
    conditional = bool(served.config.conditional)
    return run_generator(served.model, z, labels if conditional else None), labels, z


def labeled_grid_png(images: np.ndarray, requested, *, columns: int, scale: int) -> tuple[bytes, object]:
    """(PNG of the grid with each tile's reading drawn on it, Reading or None); same layout as sampling.grid."""
    scale = max(scale, LABEL_SCALE_MIN)
    picture = grid(images, columns, scale=scale)
    reading = reading_of(images, requested)
    if reading is None:
        return png_bytes(picture), None
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


def style_ui(served: Served, defaults: dict, values: dict) -> tuple[dict, np.ndarray]:
    """The style sliders with preview strips (conditional generators); returns (slider values, latent shift (D,))."""
    latent_dim = int(served.model.inputs[0].shape[-1])
    if not served.config.conditional:
        return {}, np.zeros(latent_dim, np.float32)
    with st.expander("Style sliders", expanded=any(defaults.values())):
        sliders = sliders_ui("gen", defaults)
    return sliders, dirs.shift(directions_of(served), sliders)


def style_previews_ui(served: Served, values: dict) -> None:
    """Under the grid: a small strip per slider, the first tile's latent at -2 ... +2 along each direction."""
    if not served.config.conditional:
        return
    z = latents(1, int(served.model.inputs[0].shape[-1]), seed=values["seed"], truncation=values["truncation"])[0]
    digit = values["digit"] if values["digit"] is not None else 8
    with st.container(border=True):
        st.caption("Style sliders, previewed on the first tile's hand")
        for column, name, strip in zip(st.columns(len(dirs.NAMES)), dirs.NAMES, preview_pngs(served, z, digit)):
            column.image(strip, output_format="PNG", caption=f"{dirs.LABELS[name]}: -2 ... +2")


def link_ui(query: dict) -> None:
    """The Generate link with every setting (digit, n, seed, scale, generator, sliders) and a copy button."""
    copy_link_ui(query, page="generate")


def full_query(values: dict, sliders: dict, generator_label: str | None) -> dict:
    """URL parameters that reproduce the Generate grid, including scale, generator and moved sliders."""
    query = {"digit": "any" if values["digit"] is None else str(values["digit"]),
             "n": str(values["n"]), "seed": str(values["seed"]), "scale": f"{float(values['truncation']):g}"}
    if generator_label:
        query["generator"] = generator_label
    query.update({name: f"{value:g}" for name, value in sliders.items() if value})
    return query


def generator_from_query() -> None:
    """Once per session, before the sidebar chooser: ?generator=LABEL preselects it (an unknown label is ignored)."""
    if st.session_state.get("_generator_from_query"):
        return
    st.session_state["_generator_from_query"] = True
    wanted = str(st.query_params.get("generator") or "")[:80]
    if wanted and "_generator_label" not in st.session_state:
        st.session_state["_generator_label"] = wanted  # the chooser falls back to its first entry if unknown
