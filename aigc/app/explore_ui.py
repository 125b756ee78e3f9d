"""UI pieces shared by the Explore views: cached directions and inversions, labeled tiles, links with a copy button."""
from __future__ import annotations

import urllib.parse

import numpy as np
import streamlit as st
from PIL import Image

from aigc.app.common import Served, file_key, process_cached
from aigc.app.process_cache import ProcessCache
from aigc.engine.sampling import to_uint8
from aigc.explore import directions as dirs
from aigc.runs.files import png_bytes

SLIDER_STEP = 0.1
PREVIEW_VALUES = (-2.0, -1.0, 0.0, 1.0, 2.0)


def picture_png(image: np.ndarray, *, scale: int = 4) -> bytes:
    """PNG bytes of a (H, W) float image in [0, 1], upscaled crisply by scale (1..12)."""
    picture = Image.fromarray(to_uint8(image), mode="L")
    scale = int(np.clip(scale, 1, 12))
    return png_bytes(picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST))


PREVIEWS = ProcessCache(max_entries=2048, max_bytes=8 * 2**20, size_of=lambda strips: sum(map(len, strips)))
DIRECTIONS = ProcessCache(max_entries=6)  # process-level, per (file, mtime): a clear-cache message cannot empty it


def directions_of(served: Served) -> dirs.Directions:
    """The served generator's style directions: the shipped file when it matches, else fit once per server."""
    key = file_key(served.path)
    return process_cached(DIRECTIONS, key, lambda: dirs.directions_for(served.model, key[0]),
                          spinner="Finding the style directions...")


def reading_of(images: np.ndarray, requested=None):
    """The evaluator's Reading of (N, 28, 28) images, or None when the evaluator is not shipped."""
    from aigc.explore.reading import read_images
    from aigc.quality import metrics

    if not metrics.evaluator_available():
        return None
    return read_images(images, requested=requested)


def labeled_png(images: np.ndarray, requested=None, *, ncol: int = 10, scale: int = 3) -> tuple[bytes, object]:
    """(PNG of tiles with the evaluator's label and calibrated confidence under each, Reading or None)."""
    from aigc.explore.reading import tile_texts
    from aigc.explore.tiles import labeled_grid

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
    from aigc.engine.sampling import run_generator

    z = np.asarray(z, np.float32)

    def make():
        directions = directions_of(served)
        vectors = [directions.vectors[directions.names.index(name)] for name in dirs.NAMES]
        moved = np.stack([z + value * vector for vector in vectors for value in PREVIEW_VALUES]).astype(np.float32)
        images = run_generator(served.model, moved, np.full(len(moved), digit, np.int32))
        strips = images.reshape(len(vectors), len(PREVIEW_VALUES), 28, 28)
        return [picture_png(np.concatenate(list(strip), axis=1), scale=2) for strip in strips]

    return PREVIEWS.get_or_make(file_key(served.path) + (tuple(np.round(z, 5).tolist()), int(digit)), make)


def sync_query(query: dict, owned: tuple) -> None:
    """Make the URL carry exactly `query` among the `owned` keys (others' keys are left alone)."""
    for key in owned:
        if key not in query and key in st.query_params:
            del st.query_params[key]
    for key, value in query.items():
        if st.query_params.get(key) != value:
            st.query_params[key] = value


def page_link(url: str, page: str, query: dict) -> str:
    """The link to `page` (its URL path) with `query`, on the app that `url` (the browser's URL) is part of."""
    from aigc.app.pages import PAGES

    base = urllib.parse.urlsplit(str(url or ""))
    parts = [part for part in base.path.split("/") if part]
    if parts and parts[-1] in {key for key, *_ in PAGES} | {"home"}:
        parts = parts[:-1]  # the page the browser is on: the app's root is above it
    root = "/" + "".join(part + "/" for part in parts)
    origin = f"{base.scheme}://{base.netloc}{root}" if base.scheme in ("http", "https") else root
    return origin + page + ("?" + urllib.parse.urlencode(query) if query else "")


def copy_link_ui(query: dict, *, page: str, label: str = "Copy link") -> str:
    """Show the full link to `page` with `query` and a copy button (st.code's); returns the link."""
    link = page_link(st.context.url, page, query)
    st.caption(f"{label}: the button at the right of the box copies it.")
    st.code(link, language=None, wrap_lines=True)
    return link
