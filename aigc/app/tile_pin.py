"""Click a Generate tile to pin its hand (plotly point selection over the grid); the pin feeds Interpolate and Write a number."""
from __future__ import annotations

import base64
import hashlib
import io

import numpy as np
import streamlit as st
from PIL import Image

from aigc.app.common import Served, a_digit, toast
from aigc.explore.pin import tile_centers, tile_latents

PINNED_KEY = "_pinned_style"  # the pinned latent (D,) as floats: Write a number's row 1, Interpolate's end A
PINNED_DIGIT_KEY = "_pinned_digit"  # its digit (None: pinned from an unconditional view)
PINNED_SOURCE_KEY = "_pinned_source"  # (grid, tile) last pinned: a rerun with the same selection pins nothing new
PICKER_MAX_PX = 560
PIN_RGB = "230,57,70"


def picker_figure(picture_png: bytes, *, n: int, columns: int):
    """A plotly figure of the grid picture with one invisible, clickable square marker per tile (tile numbers from 1)."""
    import plotly.graph_objects as go

    width, height = Image.open(io.BytesIO(picture_png)).size
    x, y, side = tile_centers(width, height, n=n, columns=columns)
    shown = min(1.0, PICKER_MAX_PX / width)  # the figure's pixels per picture pixel
    figure = go.Figure(go.Scatter(
        x=x, y=y, mode="markers", customdata=np.arange(1, n + 1), hovertemplate="tile %{customdata}<extra></extra>",
        marker=dict(symbol="square", size=side * shown, color=f"rgba({PIN_RGB},0)", line=dict(width=0)),
        selected=dict(marker=dict(opacity=0.3, color=f"rgb({PIN_RGB})")), unselected=dict(marker=dict(opacity=0))))
    figure.add_layout_image(source="data:image/png;base64," + base64.b64encode(picture_png).decode(), xref="x",
                            yref="y", x=0, y=0, sizex=width, sizey=height, sizing="stretch", layer="below")
    axis = dict(visible=False, fixedrange=True, showgrid=False, zeroline=False)
    figure.update_layout(width=round(width * shown), height=round(height * shown), margin=dict(l=0, r=0, t=0, b=0),
                         xaxis=dict(axis, range=[0, width]), yaxis=dict(axis, range=[height, 0]), dragmode=False,
                         showlegend=False, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)")
    return figure


def picked_tile(event, n: int) -> int | None:
    """The tile (0-based) a plotly selection event names, or None (forged or empty events -> None)."""
    try:
        points = event["selection"]["points"]
        index = int(points[-1]["point_index"])
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None
    return index if 0 <= index < n else None


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


def tile_pin_ui(served: Served, values: dict, shift: np.ndarray, picture_png: bytes, columns: int) -> None:
    """An expander with the grid as a clickable chart: clicking a tile pins its hand (built only while open)."""
    box = st.expander("Pin a tile's hand: click a tile", key="gen_pin_open", on_change="rerun")
    if not box.open:
        return
    grid_id = (values["digit"], values["n"], values["seed"], round(float(values["truncation"]), 6),
               tuple(np.round(shift, 4).tolist()))
    with box:
        st.caption("Click a tile: Interpolate can start from it, and Write a number writes row 1 in its hand.")
        event = st.plotly_chart(picker_figure(picture_png, n=values["n"], columns=columns), width="content",
                                on_select="rerun", selection_mode="points", config={"displayModeBar": False},
                                key="gen_pin_grid_" + hashlib.sha1(repr(grid_id).encode()).hexdigest()[:12])  # a new grid starts with nothing selected
        tile = picked_tile(event, values["n"])
        if tile is None:
            return
        z, labels = tile_latents(int(served.model.inputs[0].shape[-1]), n=values["n"], digit=values["digit"],
                                 seed=values["seed"], truncation=values["truncation"], shift=shift)
        if pin(z[tile], int(labels[tile]), source=(grid_id, tile)):
            toast(f"tile {tile + 1} pinned ({a_digit(int(labels[tile]))}): Interpolate and Write a number can use it.")
        st.markdown(f"**Tile {tile + 1} pinned** ({a_digit(int(labels[tile]))}).")
