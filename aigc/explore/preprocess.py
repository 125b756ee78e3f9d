"""A drawing made the way MNIST digits were: bounding box scaled to 20x20, centered by center of mass in 28x28."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

BOX = 20  # MNIST scaled each digit's bounding box to fit 20x20 (aspect kept)
SIZE = 28
INK_MIN = 0.1  # pixels above this (in [0, 1]) count as ink for the bounding box
MAX_CANVAS_PX = 1024  # a forged canvas larger than this is refused, not decoded
MIN_EXTENT = 0.2  # a drawing spanning less of the canvas's shorter side is a dot: blown up to 20 px it reads as anything
MIN_INK = 0.004  # nor is a drawing with fewer inked pixels than this share of the canvas (a 24 px dot on 280 px: 0.6%)
MAX_PNG_BYTES = 1024 * 1024  # a 280 px canvas is ~10-60 KB; .streamlit/config.toml caps what a client sends at 2 MB


class DrawingError(ValueError):
    """The drawing is unusable (empty, too large, not an image); str(error) is a message for people."""


def to_gray(pixels: np.ndarray) -> np.ndarray:
    """(H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA (uint8 or [0, 1]) -> (H, W) float32 ink in [0, 1].

    RGBA: ink is the alpha times the brightness of the stroke over a transparent or black background.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim not in (2, 3) or min(pixels.shape[:2]) < 1 or max(pixels.shape[:2]) > MAX_CANVAS_PX:
        raise DrawingError(f"a drawing must be an image up to {MAX_CANVAS_PX} px a side, got shape {pixels.shape}")
    values = pixels.astype(np.float32) / (255.0 if pixels.dtype == np.uint8 else 1.0)
    if values.ndim == 3:
        channels = values.shape[2]
        gray = values[..., :3].mean(axis=2) if channels >= 3 else values[..., 0]
        if channels == 4:
            gray = gray * values[..., 3]
        values = gray
    return np.clip(np.nan_to_num(values), 0.0, 1.0)


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes (bounded size) -> (H, W, C) uint8; DrawingError for anything else."""
    if not data or len(data) > MAX_PNG_BYTES:
        raise DrawingError(f"the drawing is empty or larger than {MAX_PNG_BYTES // 2**20} MB")
    try:
        picture = Image.open(io.BytesIO(data))
        if max(picture.size) > MAX_CANVAS_PX:
            raise DrawingError(f"the drawing is larger than {MAX_CANVAS_PX} px")
        return np.asarray(picture.convert("RGBA"))
    except DrawingError:
        raise
    except Exception as error:  # noqa: BLE001  (PIL raises many types for a bad file)
        raise DrawingError(f"the drawing is not a readable image ({type(error).__name__})") from None


def mnist_style(pixels: np.ndarray, *, min_extent: float = 0.0, min_ink: float = 0.0) -> np.ndarray:
    """A drawing (see to_gray) -> (28, 28) float32 in [0, 1]: bbox fit into 20x20, center of mass at the center.

    min_extent, min_ink: a drawing whose box spans less of the canvas's shorter side, or whose ink covers less of
    the canvas, is refused as too small to read (DrawingError saying to draw bigger).
    """
    gray = to_gray(pixels)
    rows, cols = np.nonzero(gray > INK_MIN)
    if len(rows) == 0:
        raise DrawingError("the drawing is empty: draw a digit first")
    span = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    if span < min_extent * min(gray.shape) or len(rows) < min_ink * gray.size:
        raise DrawingError(f"Draw bigger: your drawing is {span} px across on a {min(gray.shape)} px canvas, too small "
                           "to read (blown up to MNIST's size, a dot reads as anything). Clear the canvas and draw "
                           "the digit large, filling most of the square.")
    crop = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    height, width = crop.shape
    scale = BOX / max(height, width)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Anti-aliased downscaling, as the NIST digits were normalised (MNIST paper, LeCun et al.).
    small = np.asarray(Image.fromarray((crop * 255).astype(np.uint8)).resize(new_size, Image.LANCZOS), np.float32) / 255
    return center_by_mass(np.clip(small, 0.0, 1.0))


def center_by_mass(small: np.ndarray) -> np.ndarray:
    """Place (h, w) ink (h, w <= 28) in a (28, 28) float32 frame so its center of mass sits at (14, 14)."""
    height, width = small.shape
    mass = small.sum()
    ys, xs = np.mgrid[0:height, 0:width]
    cy, cx = ((ys * small).sum() / mass, (xs * small).sum() / mass) if mass > 0 else (height / 2, width / 2)
    top = int(np.clip(round(SIZE / 2 - cy - 0.5), 0, SIZE - height))
    left = int(np.clip(round(SIZE / 2 - cx - 0.5), 0, SIZE - width))
    frame = np.zeros((SIZE, SIZE), np.float32)
    frame[top:top + height, left:left + width] = small
    return frame
