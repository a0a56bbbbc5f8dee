"""The completeness gap of integrated gradients (Sundararajan, Taly & Yan 2017, axiom of completeness): the map
should sum to the change of the target's logit from the baseline to the image.

gap = Σ map − (f(x) − f(baseline)), f the target's logit (the score the method differentiates), the baseline the
black image the method integrates from; it measures how far the path integral's quadrature is from exact. Quantus
0.6.0's Completeness answers only whether the two are equal (``np.isclose``); the number itself is what this
reports, and its sign says whether the map over- or under-counts. An imported model's baseline is its normalised
black, per channel (the image its integrated gradients start from).
"""

from __future__ import annotations

import numpy as np

from service.quality.callables import Baseline, ScoresFn, baseline_images, target_scores

BASELINE = 0.0


def completeness_gap(
    scores: ScoresFn, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, baseline: Baseline = BASELINE
) -> np.ndarray:
    """(N,) Σ map − (f(x) − f(baseline)) of each image; one run of ``scores`` over images and baselines."""
    n = len(images)
    both = np.concatenate([images, baseline_images(images, baseline)])
    change = target_scores(scores, both, np.tile(np.asarray(targets), 2))
    return np.asarray(maps, np.float64).reshape(n, -1).sum(axis=1) - (change[:n] - change[n:])
