"""Sparseness (Chalasani et al. 2020): the Gini index of the map's magnitudes, 0 for a map spread evenly over all
pixels and towards 1 for a map concentrated on a few.

G = Σ_k (2k − d − 1) a_(k) / (d Σ_k a_(k)), a_(k) the |map| values in ascending order, d the number of pixels.
Quantus 0.6.0 adds 1e-7 to every (max-normalised) value before the sum, so that an all-zero map scores 0; the
paper's index has no such term, so ours differs from Quantus's by that term's share (about d·1e-7 / Σ a), and an
all-zero map, which has no concentration at all, is given 0 explicitly.
"""

from __future__ import annotations

import numpy as np


def sparseness(maps: np.ndarray) -> np.ndarray:
    """(N,) the Gini index of each map's magnitudes."""
    a = np.sort(np.abs(np.asarray(maps, np.float64).reshape(len(maps), -1)), axis=1)
    d = a.shape[1]
    weights = 2 * np.arange(1, d + 1) - d - 1
    totals = a.sum(axis=1)
    return np.divide((weights * a).sum(axis=1), d * totals, out=np.zeros(len(a)), where=totals > 0)
