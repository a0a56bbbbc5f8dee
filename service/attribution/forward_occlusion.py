"""Occlusion sensitivity over any model's forward run (Zeiler & Fergus 2014, §4.2), for models whose layers
convlens does not rebuild (imported ones): every occluded image goes through the model whole.

The image is (C, H, W); a patch x patch square of the per-channel ``fill`` is slid with ``stride`` over both
spatial axes; grid[i, j] = p(x) - p(x occluded at row starts[i], column starts[j]), p the target's probability.
``pixels`` spreads the grid back over the H x W image as ``service.attribution.occlusion`` does: each pixel gets
the mean of the drops of the squares covering it (0 where none reaches). A square whose pixels all equal ``fill``
already leaves the image as it is: its drop is exactly 0 and it is not run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.attribution.method import ForwardRuns, Limits, Maps
from service.runtime.cancellation import checkpoint

# Occluded images per forward run: bounds the run's memory (a 3 x 224 x 224 image is 0.6 MB).
IMAGES_PER_RUN = 32
# The shipped classifier's default square and step over its 28 pixels, which an imported model's defaults keep in
# proportion to its shorter side.
REFERENCE_SIDE, REFERENCE_PATCH, REFERENCE_STRIDE = 28, 4, 2

Probabilities = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ForwardOcclusion:
    """``grid`` (R, C) of the target's probability drops, ``rows`` and ``cols`` the squares' first row and column,
    ``pixels`` (H, W) the drops averaged over the squares covering each pixel, the target and its probability."""

    grid: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    pixels: np.ndarray
    target: int
    probability: float
    predicted: int


def default_square(height: int, width: int) -> tuple[int, int]:
    """The default patch and stride for an image of ``height`` x ``width``: the shipped 4 and 2 over 28 pixels,
    scaled to the shorter side (at least 1)."""
    side = min(height, width)
    return max(1, round(side * REFERENCE_PATCH / REFERENCE_SIDE)), max(
        1, round(side * REFERENCE_STRIDE / REFERENCE_SIDE)
    )


def starts(length: int, patch: int, stride: int) -> np.ndarray:
    """First index of every square position along an axis of ``length``: 0, stride, ... while the square fits."""
    return np.arange(0, length - patch + 1, stride)


def square_count(height: int, width: int, patch: int, stride: int) -> int:
    """How many squares occlusion evaluates on a ``height`` x ``width`` image."""
    return len(starts(height, patch, stride)) * len(starts(width, patch, stride))


def forward_occlusion(
    probabilities: Probabilities,
    image: np.ndarray,
    fill: np.ndarray,
    target: int | None,
    patch: int,
    stride: int,
) -> ForwardOcclusion:
    """Occlusion of ``image`` (C, H, W) for ``target`` (None: the predicted class); ``probabilities`` maps a batch
    (M, C, H, W) to its class probabilities (M, K); ``fill`` (C,) is the value of the squares per channel."""
    channels, height, width = image.shape
    rows, cols = starts(height, patch, stride), starts(width, patch, stride)
    fill = np.asarray(fill, dtype=image.dtype).reshape(channels, 1, 1)
    base = probabilities(image[None])[0]
    chosen = int(base.argmax()) if target is None else target
    positions = [(r, c) for r in rows for c in cols]
    drops = np.zeros(len(positions), dtype=np.float32)
    changed = [i for i, (r, c) in enumerate(positions) if (image[:, r : r + patch, c : c + patch] != fill).any()]
    for first in range(0, len(changed), IMAGES_PER_RUN):
        checkpoint()
        part = changed[first : first + IMAGES_PER_RUN]
        occluded = np.repeat(image[None], len(part), axis=0)
        for k, i in enumerate(part):
            r, c = positions[i]
            occluded[k, :, r : r + patch, c : c + patch] = fill
        drops[part] = base[chosen] - probabilities(occluded)[:, chosen]
    grid = drops.reshape(len(rows), len(cols))
    total, count = np.zeros((height, width)), np.zeros((height, width))
    for (r, c), drop in zip(positions, drops):
        total[r : r + patch, c : c + patch] += drop
        count[r : r + patch, c : c + patch] += 1
    pixels = np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)
    return ForwardOcclusion(grid, rows, cols, pixels, chosen, float(base[chosen]), int(base.argmax()))


def fitted_square(given: Mapping[str, Any], height: int, width: int, limits: Limits) -> dict[str, Any]:
    """``patch`` and ``stride`` for a ``height`` x ``width`` input: the given ones, or the shipped 4 and 2 over 28
    scaled to its shorter side; each at most that side, and at most ``limits.max_squares`` squares (ValueError
    saying what to change)."""
    default_patch, default_stride = default_square(height, width)
    side = min(height, width)
    chosen = {"patch": given.get("patch") or default_patch, "stride": given.get("stride") or default_stride}
    for name, value in chosen.items():
        if not 1 <= value <= side:
            raise ValueError(f"{name} must be an integer in [1, {side}] for a {height}x{width} input, got {value!r}")
    count = square_count(height, width, chosen["patch"], chosen["stride"])
    if count > limits.max_squares:
        raise ValueError(
            f"patch {chosen['patch']} and stride {chosen['stride']} make {count} squares on {height}x{width}; at "
            f"most {limits.max_squares} per image: raise the stride or the patch"
        )
    return chosen


def occluded_maps(
    probabilities: Probabilities, images: np.ndarray, targets: np.ndarray, baseline: np.ndarray, patch: int, stride: int
) -> Maps:
    """Occlusion of images (N,C,H,W) for their targets: (the grids of drops (N,R,C), the per-pixel means (N,H,W))."""
    results = [
        forward_occlusion(probabilities, image, baseline, int(target), patch, stride)
        for image, target in zip(images, targets, strict=True)
    ]
    return np.stack([r.grid for r in results]), np.stack([r.pixels for r in results])


def evaluations_at(parameters: Mapping[str, Any], height: int, width: int) -> int:
    """Runs one ``height`` x ``width`` image costs: one per square position, and the image itself."""
    return square_count(height, width, parameters["patch"], parameters["stride"]) + 1


FORWARD_RUNS = ForwardRuns(occluded_maps, fitted_square, evaluations_at)
