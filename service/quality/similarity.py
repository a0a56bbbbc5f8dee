"""How alike two maps are: Spearman's rank correlation and SSIM (Wang et al. 2004), as Quantus's similarity
functions compute them (scipy's ``spearmanr``, scikit-image's ``structural_similarity``), in numpy alone so that
the service needs neither library.

Spearman: the Pearson correlation of the ranks, tied values sharing their mean rank. SSIM: scikit-image's defaults
(7 x 7 uniform windows, K1 = 0.01, K2 = 0.03, sample covariances) with Quantus's data range, the span of the two
maps together; the mean over the windows that lie inside the image (scikit-image crops the padded border the same
way). A constant map has no rank correlation: NaN, as scipy.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

WINDOW = 7
K1, K2 = 0.01, 0.03


def ranks(values: np.ndarray) -> np.ndarray:
    """The 1-based ranks of ``values`` (1-D), ties given their mean rank."""
    ordered = np.sort(values)
    return (np.searchsorted(ordered, values, "left") + np.searchsorted(ordered, values, "right") + 1) / 2


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's correlation of two 1-D arrays; NaN when either is constant."""
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps (flattened)."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return pearson(ranks(a), ranks(b))


def window_means(image: np.ndarray) -> np.ndarray:
    """The mean of every WINDOW x WINDOW window lying inside ``image``."""
    return sliding_window_view(image, (WINDOW, WINDOW)).mean(axis=(-2, -1))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """The mean structural similarity of two (H, W) maps, H and W at least 7."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    data_range = float(max(x.max(), y.max()) - min(x.min(), y.min()))
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    covariance = WINDOW * WINDOW / (WINDOW * WINDOW - 1)
    ux, uy = window_means(x), window_means(y)
    vx, vy = covariance * (window_means(x * x) - ux * ux), covariance * (window_means(y * y) - uy * uy)
    vxy = covariance * (window_means(x * y) - ux * uy)
    with np.errstate(invalid="ignore"):  # two constant maps: no structure to compare, NaN as scikit-image
        s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())
