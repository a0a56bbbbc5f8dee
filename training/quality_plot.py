"""The explanation-quality table as a figure: methods down, metrics across, each cell coloured by the method's rank
in its column (dark green: best, as the column's ``better`` reads) and written with its mean."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from service.contract import QualityTable

matplotlib.use("Agg")


def column_ranks(means: np.ndarray, better: str) -> np.ndarray:
    """Each method's rank (0 best: the number of defined means better than its own, so equal means share a rank)
    among the defined means of one column; NaN where its mean is undefined."""
    ranks = np.full(len(means), np.nan)
    defined = ~np.isnan(means)
    values = means[defined] if better == "lower" else -means[defined]
    ranks[defined] = (values[None, :] < values[:, None]).sum(axis=1)
    return ranks


def quality_figure(table: QualityTable, split: str) -> Figure:
    """A heat-map table ranking every method per metric, the methods ordered by their mean rank."""
    methods = list(table.methods)
    columns = list(table.better)
    means = np.array(
        [
            [np.nan if (s := table.methods[m].metrics.get(c)) is None or s.mean is None else s.mean for c in columns]
            for m in methods
        ]
    )
    ranks = np.stack([column_ranks(means[:, j], table.better[c]) for j, c in enumerate(columns)], axis=1)
    counts = (~np.isnan(ranks)).sum(axis=0)
    shares = ranks / np.maximum(counts - 1, 1)  # 0 best, 1 worst in each column
    order = np.argsort(np.nanmean(shares, axis=1), kind="stable")
    fig = Figure(figsize=(1.05 * len(columns) + 2.6, 0.38 * len(methods) + 1.9), layout="constrained")
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(shares[order]), cmap="RdYlGn_r", vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(order):
        for j in range(len(columns)):
            value = means[row, j]
            ax.text(j, i, "–" if np.isnan(value) else f"{value:.3g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(columns)), [f"{c}\n({table.better[c]} better)" for c in columns], fontsize=7, rotation=35)
    ax.set_yticks(range(len(methods)), [methods[row] for row in order], fontsize=8)
    ax.tick_params(length=0)
    fig.suptitle(
        f"Explanation quality over {table.images} {split} images (seeded sample, seed {table.seed}; target: the "
        f"{table.target} class): each cell the mean, coloured by rank in its column (green best)",
        fontsize=10,
    )
    return fig
