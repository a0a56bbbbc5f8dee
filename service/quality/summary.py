"""The metrics of many maps read as one table row: each metric's headline number per image, and its mean and spread.

``measure`` answers each image's metrics as JSON-ready values (areas with their random reference, ROAD's curve,
the sanity checks' verdicts and similarities); a batch's summary and the dataset table need one number per image
and metric. ``headlines`` picks it (``COLUMNS``: the area of a curve, the verdict of the sanity checks as 1 or 0,
the Spearman correlation of the fully randomised model's map and the SSIM of the other class's map), ``summary``
averages each column over the images where it is defined (a NaN correlation is left out, and counted).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# each column of the table: the metric it comes from and which way is better
COLUMNS: dict[str, tuple[str, str]] = {
    "deletion": ("deletion", "lower"),
    "insertion": ("insertion", "higher"),
    "road_morf": ("road_morf", "lower"),
    "road_lerf": ("road_lerf", "higher"),
    "faithfulness_correlation": ("faithfulness_correlation", "higher"),
    "max_sensitivity": ("max_sensitivity", "lower"),
    "sparseness": ("sparseness", "higher"),
    "effective_complexity": ("effective_complexity", "lower"),
    "completeness_gap": ("completeness_gap", "lower"),  # its magnitude: 0 is a complete attribution
    "sanity_pass_rate": ("sanity", "higher"),
    "sanity_spearman": ("sanity", "lower"),  # the fully randomised model's map against the original
    "sanity_ssim": ("sanity", "lower"),  # the other class's map against the original
}


def _headline(column: str, value: Any) -> float:
    """One image's number in ``column`` from its ``measure`` value (NaN where undefined)."""
    if value is None:
        return math.nan
    if column == "sanity_pass_rate":
        return float(value["passes"])
    if column == "sanity_spearman":
        spearman = value["parameter_randomization"]["similarity"][-1]["spearman"]
        return math.nan if spearman is None else float(spearman)
    if column == "sanity_ssim":
        ssim = value["random_logit"]["ssim"]
        return math.nan if ssim is None else float(ssim)
    if column == "completeness_gap":
        return abs(float(value))
    if isinstance(value, dict):
        return float(value["area"])
    return float(value)


def headlines(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Each column (N,) whose metric the rows (``measure``'s answer, one per image) hold."""
    measured = set(rows[0]) if rows else set()
    return {
        column: np.array([_headline(column, row[metric]) for row in rows], np.float64)
        for column, (metric, _) in COLUMNS.items()
        if metric in measured
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    """Each column's ``mean`` and ``std`` over the images where it is defined (None when none is) and the count
    of those ``images``."""
    answer: dict[str, dict[str, float | int | None]] = {}
    for column, values in headlines(rows).items():
        defined = values[~np.isnan(values)]
        answer[column] = {
            "mean": float(defined.mean()) if len(defined) else None,
            "std": float(defined.std()) if len(defined) else None,
            "images": int(len(defined)),
        }
    return answer


def ranked(means: dict[str, float | None], better: str) -> dict[str, int | None]:
    """Each name's rank (1: best, as ``better`` reads) by its mean; None for an undefined mean."""
    defined = sorted((m for m in means.items() if m[1] is not None), key=lambda m: m[1] if better == "lower" else -m[1])
    return {name: ({n: k for k, (n, _) in enumerate(defined, 1)}).get(name) for name in means}
