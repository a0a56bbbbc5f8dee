"""The inputs that maximise each filter and class (gradient ascent), with how they compare to the test images."""

from __future__ import annotations

import numpy as np

from training import plots
from training.report.folder import FigureFolder
from training.report.sources import Sources


def optimized_figures(sources: Sources, folder: FigureFolder) -> None:
    """One grid per layer (and the classes) of the optimized inputs the statistics hold; nothing when
    they hold none."""
    section = sources.stats.data.optimized_inputs
    if section is None:
        return
    inputs = sources.stats.optimized_inputs()
    for layer, images in inputs.items():
        stats = section.layers[layer]
        reached, best = np.asarray(stats.activation), np.asarray(stats.dataset_max)
        alive = best > 0
        beats = int((reached[alive] > best[alive]).sum())
        what = "class" if layer == "classes" else f"{layer} filter"
        folder.add(
            plots.image_grid(
                [image / 255.0 for image in images],
                [str(k) for k in range(len(images))],
                columns=5 if layer == "classes" else 8,
                title=f"inputs that maximise each {what}" + (" (logit)" if layer == "classes" else ""),
                size=1.4 if layer == "classes" else 1.0,
            ),
            f"optimized-{layer}.png",
            f"What each {what} wants to see",
            f"Gradient ascent from grey ({section.method}). Measured through onnxruntime: {beats} of "
            f"{int(alive.sum())} {'classes' if layer == 'classes' else 'filters'} active on some test image "
            f"respond more to their optimized input than to every one of the {sources.stats.data.images:,} test "
            f"images (median {np.median(reached[alive] / best[alive]):.2f} times the best test image). "
            "`GET /v1/filters/{layer}/{filter}/optimized`, `/v1/filters/{layer}/optimized`, "
            "`/v1/classes/{digit}/optimized`.",
        )
