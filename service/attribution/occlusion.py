"""Occlusion sensitivity (Zeiler & Fergus 2014, §4.2): how much the target's probability drops when a square of
value ``fill`` (by default 0, the black of the MNIST background) hides part of the digit.

A patch x patch square is slid with ``stride`` over the image; grid[i, j] = p(x) - p(x occluded at row
i·stride, col j·stride), p the target's softmax probability (the graph's ``output``). ``pixels`` spreads the grid
back over the 28x28 image the way Captum's Occlusion does: each pixel gets the mean of the differences of the
squares covering it (0 where no square reaches, when the stride does not tile the image). All squares of one
image are evaluated in one batched run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.attribution.inputs import Range, RunFn, batch
from service.attribution.weights import IMAGE_SIZE

PATCH = Range(default=4, low=1, high=IMAGE_SIZE)
STRIDE = Range(default=2, low=1, high=IMAGE_SIZE)
FILL = Range(default=0.0, low=0.0, high=1.0, integer=False)


@dataclass(frozen=True)
class OcclusionMaps:
    """``grid`` (N,R,C) of probability drops per square position, ``starts`` the squares' first row (and column)
    in pixels, ``pixels`` (N,28,28) the drops averaged over the squares covering each pixel."""

    grid: np.ndarray
    starts: np.ndarray
    pixels: np.ndarray


def square_starts(patch: int, stride: int) -> np.ndarray:
    """First row (and column) of every square position: 0, stride, ... while the square stays in the image."""
    return np.arange(0, IMAGE_SIZE - patch + 1, stride)


def occlusion(
    run: RunFn,
    images: np.ndarray,
    targets: np.ndarray,
    patch: int = PATCH.default,
    stride: int = STRIDE.default,
    fill: float = FILL.default,
) -> OcclusionMaps:
    """Occlusion maps of each image's target class; ``run`` must expose the graph's ``output`` (softmax)."""
    PATCH.check("patch", patch)
    STRIDE.check("stride", stride)
    FILL.check("fill", fill)
    x, t = batch(images, targets)
    starts = square_starts(patch, stride)
    squares = [(r, c) for r in starts for c in starts]
    grid = np.empty((len(x), len(squares)), dtype=np.float32)
    for n, image in enumerate(x):
        occluded = np.repeat(image[None], len(squares) + 1, axis=0)
        for s, (r, c) in enumerate(squares, 1):
            occluded[s, r : r + patch, c : c + patch] = fill
        p = run(occluded, ["output"])["output"][:, t[n]]
        grid[n] = p[0] - p[1:]
    total = np.zeros(x.shape, dtype=np.float64)
    count = np.zeros(x.shape[1:], dtype=np.int64)
    for s, (r, c) in enumerate(squares):
        total[:, r : r + patch, c : c + patch] += grid[:, s, None, None]
        count[r : r + patch, c : c + patch] += 1
    pixels = np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)
    return OcclusionMaps(grid.reshape(len(x), len(starts), len(starts)), starts, pixels)
