"""Feature invariance (paper, figure 5): the statistics' curves per transform."""

from __future__ import annotations

import numpy as np

from training import plots
from training.report.folder import FigureFolder
from training.report.sources import Sources


def invariance_figures(sources: Sources, folder: FigureFolder) -> None:
    """One figure per transform from the statistics' invariance curves; nothing when they have none."""
    data = sources.stats.data.invariance
    if data is None:
        return
    for transform, curves in data.transforms.items():
        middle = int(np.argmin(np.abs(np.asarray(curves.amounts) - (1.0 if transform == "scale" else 0.0))))
        ends = curves.all.accuracy[0], curves.all.accuracy[-1]
        folder.add(
            plots.invariance_figure(curves, transform, None, sources.stats.data.split),
            f"invariance-{transform}.png",
            f"Feature invariance: {transform} (paper, figure 5)",
            f"The first {data.images:,} test images, each {transform} by every amount ({curves.unit}); left: each "
            "layer's mean Euclidean distance between the transformed image's layer vector and the original's "
            "(relative to its largest), middle: the mean probability of the true digit, right: the share still "
            f"classified as it ({100 * ends[0]:.1f} % and {100 * ends[1]:.1f} % at the two ends, "
            f"{100 * curves.all.accuracy[middle]:.1f} % untransformed). `POST /v1/invariance` draws the same for "
            "one upload; `GET /v1/statistics/invariance` serves these curves, per digit too.",
        )
