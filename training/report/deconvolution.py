"""Deconvnet projections: every conv1 map and the strongest conv2 and pool maps of example digits, and each
filter's top-9 images beside their projections."""

from __future__ import annotations

import math

import numpy as np

from service.contract import SPATIAL_LAYERS
from service.pictures.grids import side_by_side
from service.studies.layers import filter_projections, layer_activity, projection_of_digit
from training import plots
from training.report.folder import FigureFolder
from training.report.sources import Sources, model_input

EXAMPLE_DIGITS = (3, 7, 9)
TOP_FILTERS = 6
STRONGEST = 8


def deconvolutions(sources: Sources, folder: FigureFolder) -> None:
    """For the first test image of each example digit: every conv1 map projected to pixels, then the
    strongest conv2 and pool maps through the deconvnet (paper, figures 18-23)."""
    for digit in EXAMPLE_DIGITS:
        index = sources.first[digit]
        image = model_input(sources.images[index])
        outputs = {name: maps[0] for name, maps in sources.classifier.run(image, list(SPATIAL_LAYERS)).items()}
        active = set(layer_activity(outputs["conv1"]).active)
        shown = projection_of_digit(sources.classifier, image, "conv1")
        fig = plots.image_grid(
            [sources.images[index], *shown],
            ["input", *(f"{k}" for k in range(len(shown)))],
            columns=11,
            highlight=[False, *(k in active for k in range(len(shown)))],
            title=f"conv1 deconvolution of test image #{index} (a {digit}); red frame: active filter",
        )
        folder.add(
            fig,
            f"deconv-conv1-digit-{digit}.png",
            f'conv1 deconvolutions of a "{digit}" (paper, figures 18-23)',
            f"Each of the 32 conv1 feature maps of test image #{index}, alone (all other maps zeroed), "
            "projected back to the 28x28 input by a transposed convolution with conv1's own weights — the "
            "paper's method (`POST /v1/deconvolution/conv1/{k}`). Red frames mark the active filters; "
            "every tile is min-max scaled on its own.",
        )

        images, titles = [], []
        for layer in ("conv2", "pool"):
            strongest = np.argsort(-layer_activity(outputs[layer]).norms, kind="stable")[:STRONGEST]
            images += list(projection_of_digit(sources.classifier, image, layer, strongest.tolist()))
            titles += [f"{layer} {k}" for k in strongest]
        fig = plots.image_grid(
            images,
            titles,
            columns=STRONGEST,
            row_labels=["conv2", "pool"],
            title=f"Deconvnet projections of the {STRONGEST} strongest conv2 and pool "
            f"filters, test image #{index} (a {digit})",
        )
        folder.add(
            fig,
            f"deconv-deep-digit-{digit}.png",
            f'conv2 and pool deconvolutions of a "{digit}" (beyond the paper)',
            f"The {STRONGEST} conv2 and pool filters with the largest feature-map norm for test image "
            f"#{index}, each projected to pixels with Zeiler and Fergus' deconvnet, which the paper could "
            "not build: keep one map (for pool, first unpool it with the max-pooling switches of this "
            "image's forward pass), transposed convolution with conv2's weights, ReLU, transposed "
            "convolution with conv1's weights (`POST /v1/deconvolution/{layer}/{k}`).",
        )


def top_images(sources: Sources, folder: FigureFolder, top_filters: int = TOP_FILTERS) -> None:
    """For the ``top_filters`` filters of each layer with the largest mean norm: the 9 strongest test
    images beside their projections."""
    for layer in SPATIAL_LAYERS:
        means = np.asarray(sources.stats.layer(layer).norms["all"]["mean"])
        chosen = np.argsort(-means, kind="stable")[:top_filters]
        columns = 2
        rows = math.ceil(len(chosen) / columns)
        fig = plots.Figure(figsize=(4.4 * columns, 2.35 * rows + 0.4), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
        for ax, k in zip(axes, chosen):
            rows_, images = sources.stats.top_images(layer, int(k))
            panel = side_by_side(images, filter_projections(sources.classifier, images, layer, int(k)))
            ax.imshow(panel, cmap="gray", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"filter {k}: norms {rows_[0]['norm']:.3g} … {rows_[-1]['norm']:.3g}", fontsize=9)
        for ax in axes[len(chosen) :]:
            ax.axis("off")
        fig.suptitle(
            f"{layer}: the 9 {sources.stats.data.split} images with the strongest activation (left) "
            "and their projections (right)",
            fontsize=10,
        )
        folder.add(
            fig,
            f"top9-{layer}.png",
            f"Top-9 images per filter, {layer} (Zeiler and Fergus)",
            f"For the {len(chosen)} {layer} filters with the largest mean norm, the 9 "
            f"{sources.stats.data.split} images whose "
            "feature map has the largest L2 norm (left, strongest first, row by row) beside each image's "
            "deconvolution projection of that filter (right). Any filter: "
            f"`GET /v1/filters/{layer}/{{k}}/top-images?format=png`.",
        )
