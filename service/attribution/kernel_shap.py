"""KernelSHAP (Lundberg & Lee 2017): the segments' Shapley values estimated by the weighted linear regression of
the target's probability on which segments a copy keeps (the others at the baseline).

For M segments the values φ minimise Σ_z π(z) (f(z) - f(∅) - z·φ)² under Σ φ = f(all) - f(∅) (the efficiency
constraint, solved exactly by eliminating one value, as the shap library does), π the Shapley kernel
(M-1) / (C(M,|z|) |z| (M-|z|)). When ``coalitions`` covers all 2^M - 2 proper coalitions (M up to 10 or so, e.g.
``grid:3``) every one is evaluated with its kernel weight and φ are the exact Shapley values; otherwise
``coalitions`` of them are drawn from ``seed``: a size k with probability ∝ (M-1)/(k(M-k)), then k segments
uniformly, each draw weighted alike (the kernel is in the sampling, as in Captum's KernelShap, which instead
pins f(all) and f(∅) with a large weight). The per-pixel map gives each pixel its segment's value; signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import product
from math import comb
from typing import Any

import numpy as np

from service.attribution.inputs import Range, segment_count
from service.attribution.method import ForwardRuns, Maps, Method, Scores
from service.attribution.perturbation import SEGMENTS, composed, on_classifier, segment_labels, target_scores

COALITIONS = Range(default=500, low=1, high=20_000, text="coalitions of segments evaluated", limit="max_perturbations")
SEED = Range(default=0, low=0, high=2**32 - 1, text="the coalitions' random seed")
ENUMERATED = 16  # segments up to which all coalitions may be enumerated (2^16 rows)


def coalitions_of(count: int, coalitions: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The proper coalitions (K, count) bool KernelSHAP evaluates and their regression weights (K,): all of them
    with the Shapley kernel's weights when ``coalitions`` covers them, else ``coalitions`` drawn from ``seed``."""
    if count <= ENUMERATED and 2**count - 2 <= coalitions:
        rows = np.array(list(product((False, True), repeat=count)), dtype=bool)[1:-1]
        sizes = rows.sum(axis=1)
        kernel = (count - 1) / (np.array([comb(count, int(k)) for k in sizes]) * sizes * (count - sizes))
        return rows, kernel
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, count)
    mass = (count - 1) / (sizes * (count - sizes))
    drawn = rng.choice(sizes, size=coalitions, p=mass / mass.sum())
    order = np.argsort(rng.random((coalitions, count)), axis=1)
    rows = order < drawn[:, None]  # the first k of a random order: k segments uniformly
    return rows, np.ones(coalitions)


def shapley_regression(
    rows: np.ndarray, kernel: np.ndarray, values: np.ndarray, empty: float, full: float
) -> np.ndarray:
    """φ (M,) of the constrained weighted least squares above, f(z) given as ``values`` (K,) of ``rows`` (K, M)."""
    count = rows.shape[1]
    total = full - empty
    if count == 1:
        return np.array([total])
    z = rows.astype(np.float64)
    y = values - empty - z[:, -1] * total
    x = z[:, :-1] - z[:, -1:]
    root = np.sqrt(kernel)[:, None]
    head = np.linalg.lstsq(x * root, y * root[:, 0], rcond=None)[0]
    return np.append(head, total - head.sum())


def kernel_shap(
    scores: Scores,
    images: np.ndarray,
    targets: np.ndarray,
    baseline: np.ndarray,
    segments: str = SEGMENTS.default,
    coalitions: int = COALITIONS.default,
    seed: int = SEED.default,
) -> Maps:
    """KernelSHAP of images (N,C,H,W) for their targets: (per-pixel values, the same) both (N,H,W)."""
    maps = []
    for image, target in zip(images, targets, strict=True):
        labels = segment_labels(image, segments)
        count = int(labels.max()) + 1
        rows, kernel = coalitions_of(count, coalitions, seed)
        ends = np.array([[True] * count, [False] * count])
        probabilities = target_scores(scores, composed(image, baseline, labels, np.vstack([ends, rows])), int(target))
        phi = shapley_regression(rows, kernel, probabilities[2:], probabilities[1], probabilities[0])
        maps.append(phi[labels])
    pixels = np.stack(maps).astype(np.float32)
    return pixels, pixels


def evaluations(parameters: Mapping[str, Any]) -> int:
    """Runs one image costs: its coalitions (all 2^M - 2 when fewer), the whole image and the baseline."""
    count = segment_count(parameters["segments"])
    proper = 2**count - 2 if count <= ENUMERATED and parameters["segments"].startswith("grid") else None
    return min(parameters["coalitions"], proper if proper is not None else parameters["coalitions"]) + 2


METHOD = Method(
    "kernel-shap",
    on_classifier(kernel_shap),
    title="KernelSHAP",
    text="(Lundberg & Lee 2017, over `segments`)",
    parameters={"segments": SEGMENTS, "coalitions": COALITIONS, "seed": SEED},
    needs_gradients=False,
    evaluations=evaluations,
    forward_runs=ForwardRuns(kernel_shap),
)
