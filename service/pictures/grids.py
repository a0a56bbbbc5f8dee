"""Turning feature maps and projections into 8-bit images and mosaics."""

import math

import numpy as np

from service.runtime.output_budget import charge

GAP = 128  # the gaps between tiles: mid-gray, so that black (all-zero) tiles do not run together


def to_uint8(a: np.ndarray, lo: float | np.ndarray | None = None, hi: float | np.ndarray | None = None) -> np.ndarray:
    """Linearly map [lo, hi] to 0..255 (values outside are clipped) as uint8.

    lo and hi default to the array's min and max and may be arrays that broadcast
    against `a` (per-map scaling). Where hi <= lo (a constant input) the result is
    0, computed without any division by zero or NaN.
    """
    x = np.asarray(a, dtype=np.float64)
    lo = x.min() if lo is None else np.asarray(lo, dtype=np.float64)
    hi = x.max() if hi is None else np.asarray(hi, dtype=np.float64)
    span = hi - lo
    flat = span <= 0
    scaled = (np.clip(x, lo, hi) - lo) * (255.0 / np.where(flat, 1.0, span))
    return np.rint(np.where(flat, 0.0, scaled)).astype(np.uint8)


def tile(
    maps: np.ndarray,
    columns: int | None = None,
    pad: int = 1,
    pad_value: int = GAP,
    normalize_each: bool = True,
    channels_last: bool = False,
) -> np.ndarray:
    """Lay C maps out as one uint8 mosaic, row-major in filter order.

    maps is (C,H,W), or (H,W,C) with channels_last=True (raw layer activations).
    columns defaults to ceil(sqrt(C)); `pad` pixels of `pad_value` separate the
    tiles (none around the border) and fill unused cells of the last row. With
    normalize_each every map is min-max scaled on its own, otherwise all share one
    scale. Result shape: (rows*H + (rows-1)*pad, columns*W + (columns-1)*pad).
    """
    m = np.asarray(maps)
    if channels_last:
        m = np.moveaxis(m, -1, 0)
    if m.ndim != 3 or m.shape[0] == 0:
        raise ValueError(f"maps must be a non-empty (C,H,W) stack, got shape {m.shape}")
    c, h, w = m.shape
    cols = math.ceil(math.sqrt(c)) if columns is None else columns
    if cols < 1 or pad < 0:
        raise ValueError(f"need columns >= 1 and pad >= 0, got columns={cols}, pad={pad}")
    rows = math.ceil(c / cols)
    if normalize_each:
        img = to_uint8(m, m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True))
    else:
        img = to_uint8(m)
    cells = np.full((rows * cols, h + pad, w + pad), pad_value, dtype=np.uint8)
    cells[:c, :h, :w] = img
    mosaic = cells.reshape(rows, cols, h + pad, w + pad).transpose(0, 2, 1, 3)
    mosaic = mosaic.reshape(rows * (h + pad), cols * (w + pad))
    return mosaic[: mosaic.shape[0] - pad, : mosaic.shape[1] - pad]


def upscale_nearest(img: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling of the first two axes by an integer factor.

    Each pixel becomes a scale x scale block, so small maps stay crisp when shown.
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    img = np.asarray(img)
    charge(img.shape[0] * img.shape[1] * scale * scale, scale)
    # across first, on the small picture, then whole rows down: each row is one block copy (a 224x224 RGB heat map:
    # 23 against 135 us the other way round, whose second repeat copies every pixel on its own)
    return np.repeat(np.repeat(np.asarray(img), scale, axis=1), scale, axis=0)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4, columns: int = 3) -> np.ndarray:
    """Two stacks (N, H, W) as two grids of ``columns`` columns next to each other, each tile scaled on its own,
    on mid-gray (the gaps); e.g. a filter's top-9 images beside their projections."""
    a, b = tile(left, columns=columns), tile(right, columns=columns)
    height = max(a.shape[0], b.shape[0])
    out = np.full((height, a.shape[1] + gap + b.shape[1]), GAP, np.uint8)
    out[: a.shape[0], : a.shape[1]] = a
    out[: b.shape[0], a.shape[1] + gap :] = b
    return out


def tile_colour(pictures: np.ndarray, pad: int = 1, scale_each: bool = True) -> np.ndarray:
    """Lay (N, H, W, 3) colour pictures out as one (rows*H + gaps, columns*W + gaps, 3) uint8 mosaic, row-major,
    ceil(sqrt(N)) columns, mid-gray gaps as ``tile``'s; with ``scale_each`` each picture min-max scaled on its own
    over all its channels at once (so that its colours keep their balance), else uint8 pictures as they are."""
    m = np.asarray(pictures, dtype=np.float64)
    count, height, width, channels = m.shape
    if scale_each:
        scaled = to_uint8(m, m.min(axis=(1, 2, 3), keepdims=True), m.max(axis=(1, 2, 3), keepdims=True))
    else:
        scaled = np.asarray(pictures, dtype=np.uint8)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cells = np.full((rows * columns, height + pad, width + pad, channels), GAP, dtype=np.uint8)
    cells[:count, :height, :width] = scaled
    mosaic = cells.reshape(rows, columns, height + pad, width + pad, channels).transpose(0, 2, 1, 3, 4)
    mosaic = mosaic.reshape(rows * (height + pad), columns * (width + pad), channels)
    return mosaic[: mosaic.shape[0] - pad, : mosaic.shape[1] - pad]
