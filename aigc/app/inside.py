"""Train page: a look inside the GAN, epoch by epoch, from the files the trainer writes (engine/inside.py).

Left, the fixed-seed sample grid with the discriminator's score D(x) on each tile; right, the map: real MNIST test
digits (grey) and generated ones (colored by digit) in the evaluator's feature plane. One slider picks the epoch.
Everything shown is read once per file and modification time (caches.INSIDE), so a live poll costs a folder listing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from PIL import Image, ImageDraw, ImageFont

from aigc.engine.sampling import GRID_PAD
from aigc.runs.files import finite_number, png_bytes, read_json
from aigc.runs.layout import RunPaths
from aigc.serve.caches import INSIDE, file_key

TILE_SCALE = 2  # 56 px digits: ten to a row fit half the page
CAPTION_PX = 15
FRAME_PX = 3
FONT_PX = 12
DIGIT_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                "#393b79")
REAL_COLOR = "rgba(120, 120, 120, 0.35)"
FAKE_RGB, DOUBT_RGB, REAL_RGB = (220, 38, 38), (234, 179, 8), (22, 163, 74)  # D(x) near 0, 0.5, 1
MAP_HEIGHT = 460
TRAIL_EPOCHS = 30  # earlier epochs whose cloud centers the map links into a path (each a file read, once per view)
NO_FILES_NOTE = ("Inside the GAN: nothing recorded for this run yet. Each epoch's end adds the discriminator's score of "
                 "every sample tile and a map of generated digits beside real ones (runs trained before this view "
                 "have none).")


@dataclass(frozen=True)
class EpochView:
    """What the page shows for one epoch: the framed grid (PNG bytes or None), the map (a figure or None), notes."""

    epoch: int
    tiles_png: bytes | None
    figure: go.Figure | None
    d_tiles_mean: float | None
    d_real_mean: float | None


def inside_epochs(paths: RunPaths) -> list[int]:
    """Epochs with a look-inside file, oldest first (a listing of one small folder)."""
    if not paths.inside.is_dir():
        return []
    epochs = []
    for path in paths.inside.glob("epoch_*.json"):
        digits = path.stem.removeprefix("epoch_")
        if digits.isascii() and digits.isdigit():
            epochs.append(int(digits))
    return sorted(epochs)


def inside_ui(paths: RunPaths, epochs=None) -> None:
    """The look inside the GAN of a run: D's score per tile and the feature map, with an epoch slider; a one-line
    note when the run has none (epochs: the run's sample epochs, unused: the inside files are listed here)."""
    found = inside_epochs(paths)
    if not found:
        st.caption(NO_FILES_NOTE)
        return
    st.markdown("**Inside the GAN** - what the discriminator thinks of each sample, and where the generated digits "
                "sit among real ones")
    # No key: when a new epoch lands the options change and the slider jumps to the newest, as the grid's does.
    chosen = st.select_slider("Epoch inside the GAN", options=found, value=found[-1]) if len(found) > 1 else found[0]
    view = epoch_view(paths, chosen, earlier=[epoch for epoch in found if epoch < chosen])
    if view is None:
        st.caption(f"The look inside epoch {chosen} is unreadable.")
        return
    left, right = st.columns([1, 1.15], gap="medium")
    with left:
        if view.tiles_png:
            st.image(view.tiles_png, caption=f"epoch {chosen}: D(x) of each tile (row = digit 0-9)",
                     output_format="PNG", alt=f"Epoch {chosen}'s sample digits, each framed and labelled with the "
                     "discriminator's score D(x), red (judged generated) to green (judged real).")
        st.caption(_d_caption(view))
    with right:
        if view.figure is None:
            st.caption("The map needs the evaluator (evaluator.keras and its statistics), which this run did not have.")
        else:
            st.plotly_chart(view.figure, key="inside_map", width="stretch")
            st.caption("Each dot is a digit, placed by the evaluator's features (a principal-component plane of real "
                       "MNIST test digits): grey dots are real digits, colored ones this epoch's generated digits, and "
                       "a thin line traces each digit's center through the earlier epochs. As training goes on, each "
                       "color should settle on its digit's part of the grey cloud.")


def _d_caption(view: EpochView) -> str:
    parts = ["Frame and number: D(x), the discriminator's probability that the tile is a real MNIST digit: "
             ":green[near 1 looks real to it], :red[near 0 looks generated]."]
    if view.d_tiles_mean is not None:
        parts.append(f"These tiles average {view.d_tiles_mean:.2f}")
        parts[-1] += (f"; real test digits {view.d_real_mean:.2f}." if view.d_real_mean is not None else ".")
    parts.append("As the generator catches up, D grows unsure: both move toward 0.5.")
    return " ".join(parts)


def epoch_view(paths: RunPaths, epoch: int, *, earlier: list[int] = ()) -> EpochView | None:
    """The view of one epoch, made once per (file, modification time) for the server; None when unreadable.
    The map draws each digit's path through the earlier epochs (the last TRAIL_EPOCHS), so the motion reads at once."""
    path = paths.inside_path(epoch)
    earlier = sorted(earlier)[-TRAIL_EPOCHS:]
    try:
        key = file_key(path) + _mtime_or_none(paths.sample_path(epoch)) + tuple(earlier)
    except OSError:
        return None
    return INSIDE.get_or_make(key, lambda: _make_view(paths, epoch, read_json(path), earlier))


def _mtime_or_none(path) -> tuple:
    """(mtime,) of a file, or (None,) when it is missing."""
    try:
        return (path.stat().st_mtime_ns,)
    except OSError:
        return (None,)


def _make_view(paths: RunPaths, epoch: int, data: dict | None, earlier: list[int]) -> EpochView | None:
    if not isinstance(data, dict) or not isinstance(data.get("tiles"), dict):
        return None
    scores = [finite_number(v) for v in data["tiles"].get("d") or []]
    known = [v for v in scores if v is not None]
    return EpochView(epoch=epoch, tiles_png=_framed_grid(paths.sample_path(epoch), scores, data["tiles"]),
                     figure=map_figure(data.get("map"), [_centers(paths.inside_path(e)) for e in earlier]),
                     d_tiles_mean=float(np.mean(known)) if known else None,
                     d_real_mean=finite_number(data.get("d_real_mean")))


def _framed_grid(sample_png, scores: list, tiles: dict) -> bytes | None:
    """The epoch's sample grid, each tile upscaled with a frame and a caption colored by its D(x); None without it."""
    try:
        with Image.open(sample_png) as picture:
            grid = np.asarray(picture.convert("L"))
    except (OSError, ValueError):
        return None
    columns = int(finite_number(tiles.get("columns")) or 10)
    step, tile = 28 + GRID_PAD, 28 * TILE_SCALE
    rows = -(-len(scores) // columns)
    if grid.shape[0] < GRID_PAD + rows * step or grid.shape[1] < GRID_PAD + columns * step:
        return None  # not the grid these scores were made for
    cell_w, cell_h = tile + 2 * FRAME_PX + 4, tile + 2 * FRAME_PX + CAPTION_PX + 4
    canvas = Image.new("RGB", (columns * cell_w, rows * cell_h), (255, 255, 255))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default(size=FONT_PX)
    for index, score in enumerate(scores):
        row, col = divmod(index, columns)
        top, left = GRID_PAD + row * step, GRID_PAD + col * step
        digit = Image.fromarray(grid[top:top + 28, left:left + 28]).resize((tile, tile), Image.NEAREST)
        x, y = col * cell_w + 2, row * cell_h + 2
        color = score_color(score)
        draw.rectangle([x, y, x + tile + 2 * FRAME_PX - 1, y + tile + 2 * FRAME_PX - 1], fill=color)
        canvas.paste(digit.convert("RGB"), (x + FRAME_PX, y + FRAME_PX))
        text = "D ?" if score is None else f"D {score:.2f}"
        draw.text((x + FRAME_PX, y + tile + 2 * FRAME_PX), text, fill=_darker(color), font=font)
    return png_bytes(canvas)


def score_color(score: float | None) -> tuple[int, int, int]:
    """Red (D = 0, judged generated) through amber (0.5) to green (1, judged real); grey when unknown."""
    if score is None:
        return (160, 160, 160)
    score = min(max(score, 0.0), 1.0)
    low, high, t = (FAKE_RGB, DOUBT_RGB, score * 2) if score < 0.5 else (DOUBT_RGB, REAL_RGB, score * 2 - 1)
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(low, high))


def _darker(color: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(c * 0.7) for c in color)


def _points(cloud) -> tuple[list, list, list] | None:
    """(x, y, digit) of a map cloud as written, None when malformed."""
    if not isinstance(cloud, dict):
        return None
    x, y, digit = cloud.get("x"), cloud.get("y"), cloud.get("digit")
    if not all(isinstance(v, list) for v in (x, y, digit)) or not len(x) == len(y) == len(digit):
        return None
    keep = [i for i in range(len(x)) if finite_number(x[i]) is not None and finite_number(y[i]) is not None
            and isinstance(digit[i], int) and 0 <= digit[i] <= 9]
    return [x[i] for i in keep], [y[i] for i in keep], [digit[i] for i in keep]


def _centers(path) -> dict[int, tuple[float, float]]:
    """{digit: (x, y)}: the center of each digit's generated cloud in a look-inside file ({} when unreadable)."""
    data = read_json(path)
    cloud = _points(data["map"].get("fake")) if isinstance(data, dict) and isinstance(data.get("map"), dict) else None
    return _centers_of(cloud) if cloud else {}


def _centers_of(cloud: tuple[list, list, list]) -> dict[int, tuple[float, float]]:
    x, y, digits = (np.asarray(values, np.float64) for values in cloud)
    return {int(digit): (float(x[digits == digit].mean()), float(y[digits == digit].mean()))
            for digit in sorted(set(cloud[2]))}


def map_figure(found: dict | None, trail: list[dict] = ()) -> go.Figure | None:
    """The map of one epoch: real digits grey (their digit at each group's center), generated ones one trace per
    digit, each with the path of its center through the earlier epochs (trail: {digit: (x, y)} per epoch, oldest
    first). None when the file has no map."""
    fake = _points(found.get("fake")) if isinstance(found, dict) else None
    if fake is None:
        return None
    real = _points(found.get("real"))
    figure = go.Figure()
    if real:
        figure.add_trace(go.Scatter(x=real[0], y=real[1], mode="markers", name="real MNIST", legendrank=1,
                                    marker=dict(color=REAL_COLOR, size=6), text=[f"real {d}" for d in real[2]],
                                    hovertemplate="%{text}<extra></extra>"))
        for digit in range(10):
            at = [i for i, d in enumerate(real[2]) if d == digit]
            if at:
                figure.add_annotation(x=float(np.median([real[0][i] for i in at])),
                                      y=float(np.median([real[1][i] for i in at])), text=f"<b>{digit}</b>",
                                      showarrow=False, font=dict(size=16, color="rgba(60, 60, 60, 0.8)"))
    asked = "asked for" if found["fake"].get("colored_by") != "read" else "read as"
    now = _centers_of(fake)
    for digit in range(10):
        path = [centers[digit] for centers in list(trail) + [now] if digit in centers]
        if len(path) > 1:
            figure.add_trace(go.Scatter(x=[x for x, _y in path], y=[y for _x, y in path], mode="lines+markers",
                                        showlegend=False, opacity=0.8, line=dict(color=DIGIT_COLORS[digit], width=2.5),
                                        marker=dict(size=4), hovertemplate=f"path of generated {digit}s<extra></extra>"))
        at = [i for i, d in enumerate(fake[2]) if d == digit]
        if at:
            figure.add_trace(go.Scatter(x=[fake[0][i] for i in at], y=[fake[1][i] for i in at], mode="markers",
                                        name=f"generated {digit}", marker=dict(color=DIGIT_COLORS[digit], size=6),
                                        hovertemplate=f"generated, {asked} {digit}<extra></extra>"))
    explained = [finite_number(v) for v in (found.get("explained") or [])][:2]
    titles = [f"feature axis {n + 1}" + (f" ({share:.0%} of real digits' spread)" if share is not None else "")
              for n, share in enumerate(explained + [None] * (2 - len(explained)))]
    centers = [list(zip(*c.values())) for c in trail if c]
    x_range, y_range = _span([real, fake] + [(list(xs), list(ys)) for xs, ys in centers])
    figure.update_layout(height=MAP_HEIGHT, margin=dict(l=10, r=50, t=40, b=10), uirevision="keep",
                         title=dict(text="Generated digits among real ones (evaluator's features)", x=0,
                                    xanchor="left"),
                         xaxis=dict(title=dict(text=titles[0]), range=x_range, zeroline=False),
                         yaxis=dict(title=dict(text=titles[1]), range=y_range, zeroline=False),
                         legend=dict(font=dict(size=11)), plot_bgcolor="white",
                         modebar=dict(orientation="v", remove=["lasso2d", "select2d", "autoScale2d"]))
    figure.update_xaxes(showgrid=True, gridcolor="#eee")
    figure.update_yaxes(showgrid=True, gridcolor="#eee")
    figure.to_dict()  # its plain dict, made once for every session that draws it
    return figure


def _span(clouds) -> tuple[list[float], list[float]]:
    """x and y ranges around every point of the clouds given (None skipped), with a margin."""
    xs = [v for cloud in clouds if cloud for v in cloud[0]]
    ys = [v for cloud in clouds if cloud for v in cloud[1]]
    if not xs:
        return [-1.0, 1.0], [-1.0, 1.0]

    def around(values):
        low, high = min(values), max(values)
        margin = max(high - low, 1e-6) * 0.06
        return [low - margin, high + margin]

    return around(xs), around(ys)
