"""Pinning a Generate tile: each tile's latent and label, where tiles sit in a grid picture, a walk from a pinned latent."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from aigc.engine.sampling import GRID_PAD, digit_labels, latents, run_generator, slerp

PICKER_MAX_PX = 560
PIN_RGB = "230,57,70"


def tile_latents(latent_dim: int, *, n: int, digit: int | None, seed: int, truncation: float,
                 shift: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(z (n, D) float32, labels (n,) int32) behind a Generate grid, moved by the style shift (D,) when given."""
    z = latents(n, latent_dim, seed=seed, truncation=truncation)
    if shift is not None:
        z = z + np.asarray(shift, np.float32)[None]
    return z.astype(np.float32), digit_labels(n, digit, seed=seed)


def tile_centers(width: int, height: int, *, n: int, columns: int, pad: int = GRID_PAD) -> tuple[np.ndarray, np.ndarray, float]:
    """(x (n,), y (n,), tile side) in pixels of each tile's center in a sampling.grid picture of width x height."""
    assert n > 0 and columns > 0, "a grid has at least one tile and one column"
    scale = width / (columns * (28 + pad) + pad)  # the picture was upscaled by an integer we can read back
    index = np.arange(n)
    rows, cols = np.divmod(index, columns)
    step = (28 + pad) * scale
    x = pad * scale + cols * step + 14 * scale
    y = pad * scale + rows * step + 14 * scale
    assert y.max() < height, "the picture is smaller than its grid"
    return x, y, 28 * scale


def walk_from(generator, z_a: np.ndarray, label_a: int | None, z_b: np.ndarray, label_b: int | None, *,
              steps: int) -> np.ndarray:
    """(steps, 28, 28) frames in [0, 1] from latent z_a (D,) to z_b (D,) by slerp; labels None = unconditional.

    Two different digits are cross-faded, as sampling.interpolate does for two seeds.
    """
    assert 2 <= steps <= 200, f"steps must be between 2 and 200, got {steps}"
    ts = np.linspace(0.0, 1.0, steps)
    path = np.stack([slerp(np.asarray(z_a, np.float32), np.asarray(z_b, np.float32), t) for t in ts]).astype(np.float32)
    if label_a is None:
        return run_generator(generator, path, None)
    ends = [label_a] if label_b in (None, label_a) else [label_a, label_b]
    frames = [run_generator(generator, path, np.full(steps, label, np.int32)) for label in ends]
    if len(frames) == 1:
        return frames[0]
    fade = ts[:, None, None].astype(np.float32)
    return (1 - fade) * frames[0] + fade * frames[1]


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
