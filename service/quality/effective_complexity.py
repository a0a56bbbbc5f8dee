"""Effective complexity (Nguyen & Martínez 2020): how many pixels the map gives a non-negligible attribution.

The count of pixels whose magnitude, divided by the map's largest magnitude, is above ``eps``: as Quantus 0.6.0's
EffectiveComplexity with its defaults (``abs=True``, ``normalise=True``, ``eps=1e-5``); the paper leaves the
threshold to the user, and the division by the largest value makes the count the same for a map at any scale.
Fewer pixels is a simpler explanation.
"""

from __future__ import annotations

import numpy as np

from service.quality.callables import normalised_by_max

EPS = 1e-5


def effective_complexity(maps: np.ndarray, eps: float = EPS) -> np.ndarray:
    """(N,) the number of pixels of each map with |map| / max |map| > ``eps``."""
    return (np.abs(normalised_by_max(maps)).reshape(len(maps), -1) > eps).sum(axis=1)
