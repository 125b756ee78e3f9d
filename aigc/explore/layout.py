"""Write a number in one hand: every digit of a row shares one latent (one style), laid out with natural spacing."""
from __future__ import annotations

import numpy as np

from aigc.engine.sampling import latents, run_generator

MAX_DIGITS = 16
ROWS_MIN, ROWS_MAX = 1, 8
INK_COLUMN = 0.15  # a column with a pixel above this is part of the digit's tight crop
GAP_PX = 2  # pixels between digits before jitter
JITTER_PX = 1  # +- horizontal gap and vertical baseline jitter
MARGIN_PX = 4


def parse_number(text: str) -> tuple[str, str | None]:
    """(digits, None) for 1-16 digits (spaces ignored), else ('', one line saying what is wrong)."""
    cleaned = "".join(str(text or "").split())
    if not cleaned:
        return "", "Type a number, for example 2026."
    if len(cleaned) > MAX_DIGITS:
        return "", f"Up to {MAX_DIGITS} digits, please ({len(cleaned)} typed)."
    if not cleaned.isascii() or not cleaned.isdigit():
        bad = next(c for c in cleaned if not (c.isascii() and c.isdigit()))
        return "", f"Digits 0-9 only: {bad!r} is not a digit."
    return cleaned, None


def style_latents(rows: int, latent_dim: int, *, seed: int, truncation: float = 1.0) -> np.ndarray:
    """(rows, latent_dim) float32: one latent (style) per row, seeded."""
    assert ROWS_MIN <= rows <= ROWS_MAX, f"rows must be {ROWS_MIN}..{ROWS_MAX}, got {rows}"
    return latents(rows, latent_dim, seed=seed, truncation=truncation)


def number_digits(generator, digits: str, styles: np.ndarray) -> np.ndarray:
    """(rows, len(digits), 28, 28) in [0, 1]: each row's style z (rows, D) drawn with each digit's label."""
    labels = np.array([int(c) for c in digits], np.int32)
    rows = len(styles)
    z = np.repeat(np.asarray(styles, np.float32), len(labels), axis=0)
    images = run_generator(generator, z, np.tile(labels, rows))
    return images.reshape(rows, len(labels), 28, 28)


def tight_crop(image: np.ndarray) -> np.ndarray:
    """(28, w) columns of a (28, 28) image from its first to its last ink column (the whole tile when blank)."""
    columns = np.nonzero(image.max(axis=0) > INK_COLUMN)[0]
    return image if len(columns) == 0 else image[:, columns[0]:columns[-1] + 1]


def compose_row(images: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
    """(n, 28, 28) digits in [0, 1] -> (28 + 2 * JITTER_PX, W) one line: tight crops, jittered gaps and baselines."""
    crops = [tight_crop(image) for image in images]
    gaps = [GAP_PX + int(rng.integers(-JITTER_PX, JITTER_PX + 1)) for _ in crops[1:]] + [0]
    width = sum(c.shape[1] for c in crops) + sum(gaps)
    line = np.zeros((28 + 2 * JITTER_PX, width), np.float32)
    left = 0
    for crop, gap in zip(crops, gaps):
        top = JITTER_PX + int(rng.integers(-JITTER_PX, JITTER_PX + 1))
        region = line[top:top + 28, left:left + crop.shape[1]]
        np.maximum(region, crop, out=region)  # overlapping strokes blend like ink
        left += crop.shape[1] + gap
    return line


def compose_page(rows: np.ndarray, *, seed: int) -> np.ndarray:
    """(rows, n, 28, 28) digits -> (H, W) float32 page in [0, 1], one written line per row, left-aligned with margins."""
    rng = np.random.default_rng(seed + 7_919)
    lines = [compose_row(row, rng=rng) for row in rows]
    width = max(line.shape[1] for line in lines) + 2 * MARGIN_PX
    height = sum(line.shape[0] for line in lines) + MARGIN_PX * (len(lines) + 1)
    page = np.zeros((height, width), np.float32)
    top = MARGIN_PX
    for line in lines:
        page[top:top + line.shape[0], MARGIN_PX:MARGIN_PX + line.shape[1]] = line
        top += line.shape[0] + MARGIN_PX
    return page


def write_number(generator, digits: str, *, latent_dim: int, rows: int = 1, seed: int = 0, truncation: float = 1.0,
                 shift: np.ndarray | None = None, first_style: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(digit images (rows, n, 28, 28), page (H, W)) in [0, 1]; shift (D,) moves every style (style sliders),
    first_style (D,) replaces row 1's latent (a pinned hand)."""
    parsed, problem = parse_number(digits)
    assert problem is None, problem
    styles = style_latents(rows, latent_dim, seed=seed, truncation=truncation)
    if first_style is not None:
        styles[0] = np.asarray(first_style, np.float32)
    if shift is not None:
        styles = styles + np.asarray(shift, np.float32)[None]
    images = number_digits(generator, parsed, styles)
    return images, compose_page(images, seed=seed)
