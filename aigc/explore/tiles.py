"""Grids of digits with a caption strip under each tile (the evaluator's reading), doubtful tiles framed in red."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from aigc.engine.sampling import to_uint8

CAPTION_PX = 16  # caption strip height under each tile, in output pixels
FONT_PX = 13
PAD = 4
DOUBT_RGB = (230, 57, 70)
OK_RGB = (160, 160, 160)


def labeled_grid(images: np.ndarray, texts: list[str], flags: np.ndarray, *, ncol: int = 10,
                 scale: int = 3) -> Image.Image:
    """(N, 28, 28) images in [0, 1] -> RGB grid, each tile upscaled by scale with its text under it; flags (N,) bool frame in red."""
    images = to_uint8(images)
    n = len(images)
    assert n > 0 and len(texts) == n and len(flags) == n, "labeled_grid needs one text and one flag per image"
    assert 1 <= scale <= 12, f"scale must be 1..12, got {scale}"
    ncol = max(1, min(ncol, n))
    nrow = -(-n // ncol)
    tile = 28 * scale
    cell_w, cell_h = tile + 2 * PAD, tile + CAPTION_PX + 2 * PAD
    canvas = Image.new("RGB", (ncol * cell_w, nrow * cell_h), (14, 17, 23))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=FONT_PX)
    for index, (image, text, flag) in enumerate(zip(images, texts, flags)):
        row, col = divmod(index, ncol)
        left, top = col * cell_w + PAD, row * cell_h + PAD
        digit = Image.fromarray(image, mode="L").resize((tile, tile), Image.NEAREST).convert("RGB")
        canvas.paste(digit, (left, top))
        color = DOUBT_RGB if flag else OK_RGB
        if flag:
            draw.rectangle([left - 2, top - 2, left + tile + 1, top + tile + 1], outline=DOUBT_RGB, width=2)
        draw.text((left + 1, top + tile + 1), text, fill=color, font=font)
    return canvas


def annotate_grid(picture: Image.Image, texts: list[str], flags: np.ndarray, *, ncol: int, scale: int,
                  pad: int) -> Image.Image:
    """An RGB copy of a sampling.grid picture (same size) with each tile's text in its corner, flagged tiles framed red."""
    canvas = picture.convert("RGB")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(9, min(FONT_PX, 4 * scale)))
    step = (28 + pad) * scale
    for index, (text, flag) in enumerate(zip(texts, flags)):
        row, col = divmod(index, ncol)
        left, top = pad * scale + col * step, pad * scale + row * step
        if flag:
            draw.rectangle([left - pad * scale, top - pad * scale, left + 28 * scale + pad * scale - 1,
                            top + 28 * scale + pad * scale - 1], outline=DOUBT_RGB, width=max(1, pad * scale))
        box = draw.textbbox((left + 1, top + 1), text, font=font)
        draw.rectangle(box, fill=(14, 17, 23))
        draw.text((left + 1, top + 1), text, fill=DOUBT_RGB if flag else OK_RGB, font=font)
    return canvas
