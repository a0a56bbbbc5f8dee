"""Faithfulness correlation (Bhatt, Weller & Moura 2020): over random subsets S of the pixels, does the sum of the
map over S follow the drop of the target's score when S is set to the baseline?

μ_F = corr over the subsets of (Σ_{i∈S} map_i, f(x) − f(x with S at the baseline)), Pearson's correlation,
``runs`` subsets of ``subset`` pixels each, drawn without replacement from a seeded generator; f the target's
logit (Quantus's default ``softmax=False``), the baseline black (0, Quantus's ``perturb_baseline="black"``).
As Quantus 0.6.0, which also divides the map by its largest magnitude first (no change to a correlation); its
subsets come from numpy's global generator, ours from ``seed`` (or the caller's ``subsets``). Images (N, C, H, W)
of an imported model: a subset is of pixels, each set to the baseline in every channel (the model's normalised
black per channel), as Quantus's ``baseline_replacement_by_indices`` does with a map broadcast over the channels.
"""

from __future__ import annotations

import numpy as np

from service.quality.callables import Baseline, ScoresFn, as_planes, target_scores
from service.quality.similarity import pearson

RUNS = 50
SUBSET = 78  # a tenth of the 784 pixels (Quantus's default of 224 is for 224 x 224 images)
BASELINE = 0.0


def draw_subsets(pixels: int, runs: int, subset: int, seed: int) -> np.ndarray:
    """(runs, subset) pixel indices, each row drawn without replacement."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.choice(pixels, subset, replace=False) for _ in range(runs)])


def faithfulness_correlation(
    scores: ScoresFn,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    subsets: list[np.ndarray] | np.ndarray,
    baseline: Baseline = BASELINE,
) -> np.ndarray:
    """(N,) μ_F of each image's map, ``subsets[i]`` (runs, subset) the pixel subsets of image i (set to
    ``baseline``, per channel for (N, C, H, W) images); NaN when the map sums to the same over every subset or the
    score never changes. One batched run of ``scores``."""
    n, runs = len(images), len(subsets[0])
    planes = as_planes(np.asarray(images, np.float32))
    channels = planes.shape[1]
    flat_images = planes.reshape(n, channels, -1)
    flat_maps = np.asarray(maps, np.float64).reshape(n, -1)
    fill = np.broadcast_to(np.asarray(baseline, np.float32), (channels,))[None, :, None]
    perturbed = np.repeat(flat_images[:, None], runs, axis=1)  # (N, runs, C, pixels)
    for i in range(n):
        chosen = np.asarray(subsets[i])[:, None, :]
        perturbed[i][np.arange(runs)[:, None, None], np.arange(channels)[None, :, None], chosen] = fill
    original = target_scores(scores, images, targets)
    after = target_scores(
        scores, perturbed.reshape(n * runs, *images.shape[1:]), np.repeat(np.asarray(targets), runs)
    ).reshape(n, runs)
    sums = np.stack([flat_maps[i][np.asarray(subsets[i])].sum(axis=1) for i in range(n)])
    return np.array([pearson(sums[i], original[i] - after[i]) for i in range(n)])
