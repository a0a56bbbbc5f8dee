"""RISE (Petsiuk et al. 2018, "Randomized Input Sampling for Explanation"): the mean of random masks weighted by
the target's probability on the image seen through each mask.

A mask is an s x s grid of cells, each kept with probability ``keep`` (p), upsampled bilinearly (half-pixel
centres) to (s+1)·⌈H/s⌉ x (s+1)·⌈W/s⌉ and cropped to H x W at a random shift in [0, ⌈H/s⌉) x [0, ⌈W/s⌉): the
paper's smooth masks. The map is Σ_i p_target(x ⊙ M_i + b ⊙ (1 - M_i)) M_i / (masks · p), b the baseline (0 on
the shipped classifier, as the paper's x ⊙ M). The masks come from ``seed`` alone (numpy's PCG64), shared by every
image of a batch: a map does not depend on the rest of its batch, and the same seed gives the same map.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from service.attribution.cam import bilinear
from service.attribution.inputs import Range
from service.attribution.method import ForwardRuns, Maps, Method, Scores
from service.attribution.perturbation import RUN_VALUES, on_classifier, target_scores
from service.errors import NotApplicableError
from service.runtime.cancellation import checkpoint

MASKS = Range(default=500, low=1, high=20_000, text="random masks", limit="max_perturbations")
CELLS = Range(default=7, low=1, high=64, text="the masks' cells per side, {low}-{high} (at most the image's side)")
KEEP = Range(default=0.5, low=0.05, high=0.95, integer=False, text="each cell's chance to be kept, {low:g}-{high:g}")
SEED = Range(default=0, low=0, high=2**32 - 1, text="the masks' random seed")
MASKS_PER_DRAW = 256  # masks upsampled at once: bounds the upsampling's memory


class TooManyCells(NotApplicableError, ValueError):
    """Mask cells smaller than a pixel."""


def rise_masks(masks: int, cells: int, keep: float, seed: int, height: int, width: int) -> np.ndarray:
    """The (masks, height, width) float32 smooth masks RISE uses for these parameters (see the module's text)."""
    if cells > min(height, width):
        side = min(height, width)
        raise TooManyCells(f"cells {cells} is more than the {height}x{width} image's side: use at most {side}")
    rng = np.random.default_rng(seed)
    grids = (rng.random((masks, cells, cells)) < keep).astype(np.float32)
    cell_h, cell_w = -(-height // cells), -(-width // cells)
    shifts = rng.integers(0, (cell_h, cell_w), size=(masks, 2))
    out = np.empty((masks, height, width), np.float32)
    for start in range(0, masks, MASKS_PER_DRAW):
        smooth = bilinear(grids[start : start + MASKS_PER_DRAW], (cells + 1) * cell_h, (cells + 1) * cell_w)
        for k, (dy, dx) in enumerate(shifts[start : start + MASKS_PER_DRAW], start):
            out[k] = smooth[k - start, dy : dy + height, dx : dx + width]
    return out


def rise(
    scores: Scores,
    images: np.ndarray,
    targets: np.ndarray,
    baseline: np.ndarray,
    masks: int = MASKS.default,
    cells: int = CELLS.default,
    keep: float = KEEP.default,
    seed: int = SEED.default,
) -> Maps:
    """RISE maps of images (N,C,H,W) for their targets: (the maps, the same) both (N,H,W), ≥ 0."""
    _, channels, height, width = images.shape
    fields = rise_masks(masks, cells, keep, seed, height, width)
    fill = baseline.astype(images.dtype)[None, :, None, None]
    maps = []
    for image, target in zip(images, targets, strict=True):
        weighted = np.zeros((height, width), np.float64)
        step = max(1, RUN_VALUES // image.size)
        for start in range(0, masks, step):
            checkpoint()
            m = fields[start : start + step, None]
            probabilities = target_scores(scores, image[None] * m + fill * (1 - m), int(target))
            weighted += np.tensordot(probabilities, fields[start : start + step], axes=1)
        maps.append(weighted / (masks * keep))
    pixels = np.stack(maps).astype(np.float32)
    return pixels, pixels


METHOD = Method(
    "rise",
    on_classifier(rise),
    title="RISE",
    text="(Petsiuk et al. 2018)",
    parameters={"masks": MASKS, "cells": CELLS, "keep": KEEP, "seed": SEED},
    signed=False,
    needs_gradients=False,
    evaluations=itemgetter("masks"),
    forward_runs=ForwardRuns(rise),
)
