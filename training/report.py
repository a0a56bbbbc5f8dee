"""``python -m training report``: the paper's figures reproduced from the shipped models, as a Markdown report.

Everything comes from the model folder (manifest, ONNX files, ``statistics.json``, ``top_images.npz``) through
the service's own runtime and math (``service.runtime.registry``, ``service.studies.statistics``,
``service.featuremaps``,
``service.studies.explain``); MNIST is read only for the example digits (the first "3", "7" and "9" of the test set,
one of
each digit for the autoencoder, and the first 0, 2, 4, 7 and 9 for the attribution maps). Writes ``README.md`` and
its PNG figures into the output folder.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.attribution import METHODS
from service.contract import (
    AUTOENCODER,
    CLASSIFIER,
    COMPARISON_JSON,
    COMPARISON_MD,
    MANIFEST_FILE,
    SPATIAL_LAYERS,
    VARIANTS_DIR,
    AttributionStatistics,
    plot_name,
)
from service.pictures.grids import side_by_side, tile
from service.pictures.heatmap import heat_map
from service.runtime.registry import ModelLoadError, load_registry
from service.studies.digit_judge import OUTPUTS
from service.studies.evolution import EvolutionUnavailable, NotRecorded, load_evolution
from service.studies.explain import explain
from service.studies.layers import filter_projections, layer_activity, projection_of_digit
from service.studies.statistics import DatasetStatistics, StatisticsUnavailable, load_statistics
from training import plots
from training.analyze import AnalysisError
from training.data import load_split

EXAMPLE_DIGITS = (3, 7, 9)
TOP_FILTERS = 6
STRONGEST = 8
EVOLUTION_FILTERS = 4  # per spatial layer: a dozen in all
ATTRIBUTION = "attribution"  # the report's section on the attribution methods
ATTRIBUTION_DIGITS = (0, 2, 4, 7, 9)  # the first test image of each is explained by every method
# One line per method of ``service.attribution.METHODS``: what its map is, and where it comes from.
METHOD_DEFINITIONS = {
    "saliency": (
        "the gradient of the target's logit with respect to the 28x28 input, signed",
        "Simonyan, Vedaldi & Zisserman 2014, *Deep inside convolutional networks*",
    ),
    "gradient-x-input": (
        "that gradient times the input, pixel by pixel",
        "Shrikumar et al. 2016, *Not just a black box*",
    ),
    "guided-backprop": (
        "the gradient with every ReLU passing back only positive gradients, and only where its input was positive",
        "Springenberg et al. 2015, *Striving for simplicity*",
    ),
    "integrated-gradients": (
        "the input times the mean gradient along the straight path from the all-black image (trapezoid rule)",
        "Sundararajan, Taly & Yan 2017, *Axiomatic attribution for deep networks*",
    ),
    "smoothgrad": (
        "the mean saliency over copies of the input with Gaussian noise added",
        "Smilkov et al. 2017, *SmoothGrad*",
    ),
    "grad-cam": (
        "ReLU(sum_k a_k A^k) over a layer's feature maps A^k, a_k the spatial mean of d logit / d A^k; placed over "
        "the input where the layer's units look",
        "Selvaraju et al. 2017, *Grad-CAM*",
    ),
    "occlusion": (
        "the drop of the target's probability when a black square covers each position; a pixel's value is the "
        "mean drop of the squares that cover it",
        "Zeiler & Fergus 2014, section 4.2",
    ),
}
RULE_NAMES = {
    "image-mean": "image mean (the paper's rule)",
    "dataset-mean": "dataset threshold",
    "filter-label-mean": "filter's mean over the digit",
}


@dataclass
class ReportFigure:
    """One figure of the report: its file, title and caption."""

    file: str
    title: str
    caption: str
    section: str = ""


@dataclass
class AttributionTiles:
    """Heat maps of a few digits by every attribution method: ``tiles`` (digits, 1 + methods, 28, 28, 3) uint8 with
    the gray input first, a label per row (test index, true label, prediction, probability), whether each method's
    map is signed, and the (test index, method) pairs whose map is zero everywhere."""

    tiles: np.ndarray
    labels: list[str]
    signed: list[bool]
    empty: list[tuple[int, str]]


def _input(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 255.0


class Report:
    """Builds the figures one by one into ``out_dir``, remembering each with its caption."""

    def __init__(self, model_dir: Path, data_dir, out_dir: Path, top_filters: int = TOP_FILTERS) -> None:
        self.model_dir, self.out_dir, self.top_filters = Path(model_dir), Path(out_dir), top_filters
        try:
            self.registry = load_registry(self.model_dir)
            self.stats: DatasetStatistics = load_statistics(self.model_dir, self.registry)
        except (ModelLoadError, StatisticsUnavailable) as exc:
            raise AnalysisError(str(exc)) from exc
        self.classifier = self.registry.models[CLASSIFIER]
        self.autoencoder = self.registry.models.get(AUTOENCODER)
        self.images, self.labels = load_split(data_dir, "test")
        self.first = {d: int(np.flatnonzero(self.labels == d)[0]) for d in range(10)}
        self.figures: list[ReportFigure] = []
        self.variants_text = ""
        self.attribution_text = ""
        self.out_dir.mkdir(parents=True, exist_ok=True)

    def add(self, fig, file: str, title: str, caption: str, section: str = "") -> None:
        """Save ``fig`` as ``file``; it is shown under its own heading, within ``section`` when one is given."""
        plots.save(fig, self.out_dir / file)
        self.figures.append(ReportFigure(file, title, caption, section))

    # -- figures ---------------------------------------------------------------------------------------------

    def training_curves(self) -> None:
        entry = self.classifier.entry
        self.add(
            plots.training_history(entry.history, "classifier", entry.training),
            "training-curves.png",
            "Training curves (paper, figure 6)",
            "Loss and accuracy of the classifier after every epoch, on the training batches (with dropout "
            "and shift augmentation) and on the 10,000 test images; recorded by `python -m training train` "
            "in `models/manifest.json`.",
        )

    def confusion(self) -> None:
        metrics = self.classifier.entry.metrics
        self.add(
            plots.confusion_matrix(metrics["confusion_matrix"], metrics["test_accuracy"]),
            "confusion-matrix.png",
            "Confusion matrix (paper, figure 7)",
            "Rows: true digit, columns: the digit the exported ONNX classifier predicts (arg-max of its "
            "softmax) for the 10,000 test images; colour on a log scale so that single mistakes show.",
        )

    def one_image(self, digit: int = 7) -> None:
        index = self.first[digit]
        outputs = self.classifier.run(_input(self.images[index]), list(SPATIAL_LAYERS))
        fig = plots.Figure(figsize=(12, 7.6), layout="constrained")
        mosaic = fig.subplot_mosaic(
            [["input", layer] if i == 0 else [".", layer] for i, layer in enumerate(SPATIAL_LAYERS)],
            width_ratios=[1, 9],
        )
        axes = [mosaic[layer] for layer in SPATIAL_LAYERS]
        for ax, layer in zip(axes, SPATIAL_LAYERS):
            activity = layer_activity(outputs[layer][0])
            norms, cut, active = activity.norms, activity.threshold, set(activity.active)
            colours = ["#d62728" if k in active else "#9bb7d4" for k in range(len(norms))]
            ax.bar(range(len(norms)), norms, color=colours, width=0.8)
            ax.axhline(cut, color="black", linestyle="--", linewidth=1, label=f"mean of this image's norms ({cut:.3g})")
            t = self.stats.dataset_threshold(layer)
            ax.axhline(t, color="#e67e22", linestyle=":", linewidth=1.2, label=f"dataset threshold ({t:.3g})")
            ax.set_xlim(-0.7, len(norms) - 0.3)
            ax.set_ylim(0, 1.25 * norms.max())
            ax.set_xticks(range(0, len(norms), 2 if len(norms) <= 32 else 4))
            ax.tick_params(axis="x", labelsize=8)
            ax.set_ylabel("L2 norm")
            ax.set_title(f"{layer}: {len(active)} of {len(norms)} filters active (red)", fontsize=10)
            ax.legend(fontsize=8, loc="upper right", ncols=2)
            ax.grid(axis="y", alpha=0.3)
        axes[-1].set_xlabel("filter")
        mosaic["input"].imshow(self.images[index], cmap="gray")
        mosaic["input"].set_xticks([])
        mosaic["input"].set_yticks([])
        mosaic["input"].set_title("input", fontsize=10)
        fig.suptitle(f"Active filters of one image (test image #{index}, a {digit})", fontsize=11)
        self.add(
            fig,
            "active-filters-one-image.png",
            "Active filters of one image (paper, figure 8)",
            f"The L2 norm of every feature map of conv1, conv2 and pool for test image #{index} (left). "
            "A filter is active (red) when its norm is above the mean of the image's norms in that layer "
            "(dashed) — the paper's rule, the service's `POST /v1/active-filters/{layer}`; the dotted line "
            "is the dataset threshold (`threshold=dataset`).",
        )

    def per_digit(self) -> None:
        counts = self.stats.data.label_counts
        for layer in SPATIAL_LAYERS:
            stats = self.stats.layer(layer)
            fig = plots.active_heatmap(
                stats.active_counts["image-mean"],
                counts,
                layer,
                "image-mean",
                self.stats.data.split,
                stats.dataset_threshold,
            )
            self.add(
                fig,
                f"active-filters-per-digit-{layer}.png",
                f"Occurrence of active filters per digit, {layer} (paper, figures 9-10)",
                f"For each digit and each {layer} filter, the share of the digit's test images in which the "
                "filter is active by the paper's rule (norm above the image's mean norm), from "
                "`statistics.json` (`GET /v1/statistics/active-filters/" + layer + "`).",
            )
        layer = "conv1"
        stats = self.stats.layer(layer)
        share = {
            rule: 100 * np.asarray(stats.active_counts[rule]) / np.asarray(counts)[:, None]
            for rule in stats.active_counts
        }
        fig = plots.Figure(figsize=(7.5, 7.2), layout="constrained")
        axes = fig.subplots(3, 1, sharex=True)
        for ax, (rule, values) in zip(axes, share.items()):
            shown = ax.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
            ax.set_yticks(range(10))
            ax.set_ylabel("digit")
            ax.set_title(f"rule: {RULE_NAMES[rule]}", fontsize=10)
        axes[-1].set_xticks(range(0, stats.filters, 2))
        axes[-1].set_xlabel(f"{layer} filter")
        fig.colorbar(shown, ax=axes, label="% of the digit's images", shrink=0.6)
        fig.suptitle(f'{layer}: three readings of "active" compared', fontsize=11)
        self.add(
            fig,
            f"active-filters-rules-{layer}.png",
            f'Three rules for "active", {layer} (beyond the paper)',
            "The same counts under the three rules `statistics.json` holds: above the image's mean norm "
            "(section 3.2.1, the paper's), above the dataset threshold (the mean of all norms, section 3.2.2), "
            "and above the filter's own mean norm over the digit's images (the other reading of 3.2.1, "
            "which by construction makes every filter active in part of every digit).",
        )

    def norms(self) -> None:
        for layer in SPATIAL_LAYERS:
            stats = self.stats.layer(layer)
            fig = plots.norm_boxplot(
                stats.norms["all"],
                layer,
                None,
                self.stats.data.images,
                self.stats.data.split,
                stats.dataset_threshold,
                1.04 * max(stats.norms["all"]["max"]),
            )
            self.add(
                fig,
                f"norms-{layer}.png",
                f"Norm distribution per filter, {layer} (paper, figures 11-12)",
                f"For each {layer} filter, the distribution of its feature-map L2 norm over the test images, "
                "all on one scale: box from the first to the third quartile, median (red), mean (triangle), "
                "whiskers to the minimum and maximum; the dashed line is the dataset threshold. Per digit: "
                f"`GET /v1/statistics/norms/{layer}?label=d&format=png`.",
            )

    def deconvolutions(self) -> None:
        for digit in EXAMPLE_DIGITS:
            index = self.first[digit]
            image = _input(self.images[index])
            outputs = {name: maps[0] for name, maps in self.classifier.run(image, list(SPATIAL_LAYERS)).items()}
            active = set(layer_activity(outputs["conv1"]).active)
            shown = projection_of_digit(self.classifier, image, "conv1")
            fig = plots.image_grid(
                [self.images[index], *shown],
                ["input", *(f"{k}" for k in range(len(shown)))],
                columns=11,
                highlight=[False, *(k in active for k in range(len(shown)))],
                title=f"conv1 deconvolution of test image #{index} (a {digit}); red frame: active filter",
            )
            self.add(
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
                images += list(projection_of_digit(self.classifier, image, layer, strongest.tolist()))
                titles += [f"{layer} {k}" for k in strongest]
            fig = plots.image_grid(
                images,
                titles,
                columns=STRONGEST,
                row_labels=["conv2", "pool"],
                title=f"Deconvnet projections of the {STRONGEST} strongest conv2 and pool "
                f"filters, test image #{index} (a {digit})",
            )
            self.add(
                fig,
                f"deconv-deep-digit-{digit}.png",
                f'conv2 and pool deconvolutions of a "{digit}" (beyond the paper)',
                f"The {STRONGEST} conv2 and pool filters with the largest feature-map norm for test image "
                f"#{index}, each projected to pixels with Zeiler and Fergus' deconvnet, which the paper could "
                "not build: keep one map (for pool, first unpool it with the max-pooling switches of this "
                "image's forward pass), transposed convolution with conv2's weights, ReLU, transposed "
                "convolution with conv1's weights (`POST /v1/deconvolution/{layer}/{k}`).",
            )

    def top_images(self) -> None:
        for layer in SPATIAL_LAYERS:
            means = np.asarray(self.stats.layer(layer).norms["all"]["mean"])
            chosen = np.argsort(-means, kind="stable")[: self.top_filters]
            columns = 2
            rows = math.ceil(len(chosen) / columns)
            fig = plots.Figure(figsize=(4.4 * columns, 2.35 * rows + 0.4), layout="constrained")
            axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
            for ax, k in zip(axes, chosen):
                rows_, images = self.stats.top_images(layer, int(k))
                panel = side_by_side(images, filter_projections(self.classifier, images, layer, int(k)))
                ax.imshow(panel, cmap="gray", interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"filter {k}: norms {rows_[0]['norm']:.3g} … {rows_[-1]['norm']:.3g}", fontsize=9)
            for ax in axes[len(chosen) :]:
                ax.axis("off")
            fig.suptitle(
                f"{layer}: the 9 {self.stats.data.split} images with the strongest activation (left) "
                "and their projections (right)",
                fontsize=10,
            )
            self.add(
                fig,
                f"top9-{layer}.png",
                f"Top-9 images per filter, {layer} (Zeiler and Fergus)",
                f"For the {len(chosen)} {layer} filters with the largest mean norm, the 9 "
                f"{self.stats.data.split} images whose "
                "feature map has the largest L2 norm (left, strongest first, row by row) beside each image's "
                "deconvolution projection of that filter (right). Any filter: "
                f"`GET /v1/filters/{layer}/{{k}}/top-images?format=png`.",
            )

    def evolution(self, per_layer: int = EVOLUTION_FILTERS) -> None:
        """Zeiler and Fergus' figure 4 for ``per_layer`` filters of each spatial layer (those with the largest mean
        norm), when the classifier's training was recorded."""
        try:
            recorded = load_evolution(self.model_dir, self.classifier)
        except NotRecorded:
            return
        except EvolutionUnavailable as exc:
            raise AnalysisError(str(exc)) from exc
        epochs = [int(e) for e in recorded.epochs]
        tiles, titles, rows = [], [], []
        for layer in SPATIAL_LAYERS:
            means = np.asarray(self.stats.layer(layer).norms["all"]["mean"])
            for k in np.argsort(-means, kind="stable")[:per_layer]:
                history = recorded.of_filter(layer, int(k))
                tiles += list(history.projections)
                titles += [f"#{index}" for index in history.indices]
                rows.append(f"{layer} {k}")
        fig = plots.image_grid(
            tiles,
            titles,
            columns=len(epochs),
            size=1.25,
            row_labels=rows,
            title="Feature evolution during training: each filter's strongest projection after epoch "
            + ", ".join(map(str, epochs)),
        )
        self.add(
            fig,
            "feature-evolution.png",
            "Feature evolution during training (Zeiler and Fergus, figure 4)",
            f"For the {per_layer} filters of each layer with the largest mean norm (rows), after epochs "
            f"{', '.join(map(str, epochs))} (columns): the first {recorded.subset:,} test images' strongest "
            "activation of the filter (its index above each tile, by the L2 norm of the feature map), projected "
            "to pixels with that epoch's weights. `python -m training train` records them while the classifier "
            "trains (`models/evolution.npz`); any filter: `GET /v1/filters/{layer}/{k}/evolution?format=png`.",
        )

    def conv1_weights(self) -> None:
        kernels = np.moveaxis(self.classifier.kernels["conv1"][:, :, 0, :], -1, 0)
        bound = float(np.abs(kernels).max())
        fig = plots.Figure(figsize=(7.4, 4.0), layout="constrained")
        axes = fig.subplots(4, 8)
        for k, ax in enumerate(axes.ravel()):
            shown = ax.imshow(kernels[k], cmap="RdBu_r", vmin=-bound, vmax=bound, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(str(k), fontsize=8, pad=2)
        fig.colorbar(shown, ax=axes, label="weight", shrink=0.8)
        fig.suptitle("conv1: the 32 learned 3x3 kernels (one colour scale)", fontsize=10)
        self.add(
            fig,
            "conv1-weights.png",
            "conv1 weights (beyond the paper)",
            "The 32 3x3 kernels of conv1 as read from the ONNX file (`GET /v1/filters/conv1/weights`), on one "
            "symmetric colour scale: red weights add the pixel, blue ones subtract it.",
        )

    def invariance_figures(self) -> None:
        data = self.stats.data.invariance
        if data is None:
            return
        for transform, curves in data.transforms.items():
            middle = int(np.argmin(np.abs(np.asarray(curves.amounts) - (1.0 if transform == "scale" else 0.0))))
            ends = curves.all.accuracy[0], curves.all.accuracy[-1]
            self.add(
                plots.invariance_figure(curves, transform, None, self.stats.data.split),
                f"invariance-{transform}.png",
                f"Feature invariance: {transform} (paper, figure 5)",
                f"The first {data.images:,} test images, each {transform} by every amount ({curves.unit}); left: each "
                "layer's mean Euclidean distance between the transformed image's layer vector and the original's "
                "(relative to its largest), middle: the mean probability of the true digit, right: the share still "
                f"classified as it ({100 * ends[0]:.1f} % and {100 * ends[1]:.1f} % at the two ends, "
                f"{100 * curves.all.accuracy[middle]:.1f} % untransformed). `POST /v1/invariance` draws the same for "
                "one upload; `GET /v1/statistics/invariance` serves these curves, per digit too.",
            )

    def optimized_figures(self) -> None:
        section = self.stats.data.optimized_inputs
        if section is None:
            return
        inputs = self.stats.optimized_inputs()
        for layer, images in inputs.items():
            stats = section.layers[layer]
            reached, best = np.asarray(stats.activation), np.asarray(stats.dataset_max)
            alive = best > 0
            beats = int((reached[alive] > best[alive]).sum())
            what = "class" if layer == "classes" else f"{layer} filter"
            self.add(
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
                f"respond more to their optimized input than to every one of the {self.stats.data.images:,} test "
                f"images (median {np.median(reached[alive] / best[alive]):.2f} times the best test image). "
                "`GET /v1/filters/{layer}/{filter}/optimized`, `/v1/filters/{layer}/optimized`, "
                "`/v1/classes/{digit}/optimized`.",
            )

    def judge_figure(self) -> None:
        judge, section = self.stats.judge, self.stats.data.digit_judge
        if judge is None or section is None:
            return
        from training import nondigits

        letters, names = nondigits.letters()
        pick = np.sort(np.random.default_rng(0).choice(len(letters), min(40, len(letters)), replace=False))
        pick = pick[np.argsort([names[i] for i in pick], kind="stable")]
        shown, shown_names = letters[pick], [names[i] for i in pick]
        flagged = judge.scores(shown, self.classifier.run(shown, list(OUTPUTS))) > judge.threshold
        rows = "\n".join(f"| {name} | {auc:.4f} |" for name, auc in sorted(section.auc.items(), key=lambda kv: -kv[1]))
        self.add(
            plots.image_grid(
                list(shown),
                [f"{name}: {'flagged' if f else 'passed'}" for name, f in zip(shown_names, flagged)],
                columns=10,
                highlight=list(flagged),
                title="40 font-rendered letters (at random) through preprocess=mnist; red: judged not digit-like",
            ),
            "digit-judge-letters.png",
            "Is this a digit? (beyond the paper)",
            f"The judge ({section.method}) flags {100 * section.flagged_digits:.1f} % of the "
            f"{self.stats.data.images:,} test digits (threshold calibrated at {100 * section.target_rate:g} %), "
            f"{100 * section.flagged_letters:.1f} % of {section.letters} capital letters that resemble no digit "
            f"(rendered from fonts at several sizes and angles) and {100 * section.flagged_noise:.1f} % of "
            f"{section.noise} uniform-noise images. ROC AUC of every score tried, letters and noise against the "
            "test digits:\n\n| score | ROC AUC |\n|---|---:|\n" + rows,
        )

    def autoencoder_figures(self) -> None:
        if self.autoencoder is None:
            return
        indices = [self.first[d] for d in range(10)]
        outputs = self.autoencoder.run(_input(self.images[indices]), ["encoded", "decoded"])
        codes = [tile(code, columns=4, channels_last=True) for code in outputs["encoded"]]
        grid = [*self.images[indices], *codes, *outputs["decoded"][..., 0]]
        fig = plots.image_grid(
            grid,
            columns=10,
            row_labels=["input", "code 4x4x8", "decoded"],
            size=1.05,
            title="Autoencoder: one test digit of each class, its code and its reconstruction",
        )
        self.add(
            fig,
            "autoencoder.png",
            "Autoencoder: encoder and decoder outputs (paper, figures 15-17)",
            "Top: the first test image of each digit. Middle: the encoder's output, the 4x4x8 code, its 8 "
            "channels side by side (2 rows of 4, each min-max scaled). Bottom: the decoder's reconstruction "
            "(`POST /v1/autoencoder/encode`, `/reconstruct`).",
        )

        layers = [name for name in self.autoencoder.layer_shapes if "pool" not in name and "up" not in name]
        index = self.first[7]
        maps = self.autoencoder.run(_input(self.images[index]), layers)
        fig = plots.Figure(figsize=(2.0 * (len(layers) + 1), 2.7), layout="constrained")
        axes = fig.subplots(1, len(layers) + 1)
        axes[0].imshow(self.images[index], cmap="gray")
        axes[0].set_title("input", fontsize=9)
        for ax, name in zip(axes[1:], layers):
            values = maps[name][0]
            ax.imshow(tile(values, channels_last=True, pad_value=128), cmap="gray", interpolation="nearest")
            ax.set_title(f"{name}\n{'x'.join(map(str, values.shape))}", fontsize=9)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"Autoencoder feature maps of test image #{index} (a 7), encoder left, decoder right", fontsize=10)
        self.add(
            fig,
            "autoencoder-layers.png",
            "Autoencoder layer by layer (paper, figures 15-17)",
            'Every convolution of the autoencoder for one "7": each panel tiles all the layer\'s feature maps '
            "(each min-max scaled), from the encoder's 28x28x16 down to the 4x4x8 code and back up to the "
            "28x28 reconstruction.",
        )

    def attribution_tiles(self, digits: tuple[int, ...] = ATTRIBUTION_DIGITS) -> AttributionTiles:
        """The first test image of each of ``digits`` and its map by every attribution method for the predicted class,
        computed by the service (``service.studies.explain``) and coloured as it colours them (``heat_map``: diverging
        for
        signed maps, sequential for Grad-CAM's; Grad-CAM and occlusion at input size)."""
        indices = [self.first[d] for d in digits]
        images = _input(self.images[indices])
        tiles = np.repeat(self.images[indices][:, None, :, :, None], 1 + len(METHODS), axis=1).repeat(3, axis=-1)
        signed, empty = [], []
        for column, name in enumerate(METHODS, start=1):
            result = explain(self.classifier, images, name)
            signed.append(result.signed)
            for row, image in enumerate(images):
                tiles[row, column] = heat_map(image, result.pixels[row], result.signed).rgb
                if not np.any(result.values[row]):
                    empty.append((indices[row], name))
        labels = [
            f"#{index}: a {self.labels[index]}\npredicted {p}\np = {q:.3f}"
            for index, p, q in zip(indices, result.predicted, result.probabilities)
        ]
        return AttributionTiles(tiles, labels, signed, empty)

    def attribution_methods(self, digits: tuple[int, ...] = ATTRIBUTION_DIGITS) -> None:
        """The seven methods side by side on a few test digits (the README shows this figure too)."""
        drawn = self.attribution_tiles(digits)
        listed, layer = ", ".join(map(str, digits)), METHODS["grad-cam"].parameters["layer"].default
        fig = plots.attribution_methods_figure(
            drawn.tiles,
            list(METHODS),
            drawn.labels,
            drawn.signed,
            f"Why the network decides: every attribution method for the predicted class, first test image of {listed}",
        )
        zero = "".join(
            f" The {name} map of test image #{index} is zero everywhere"
            + (
                ": the weighted sum of the layer's maps is at most 0 at every unit, and the ReLU leaves nothing."
                if name == "grad-cam"
                else "."
            )
            for index, name in drawn.empty
        )
        self.add(
            fig,
            "attribution-methods.png",
            "The methods side by side",
            f"Rows: the first test image of the digits {listed} (test index, true label, the classifier's prediction "
            "and its probability at the left); columns: the input and the map of each method for the predicted class "
            "at its defaults, computed by the service (`POST /v1/attribution/{method}`) and drawn as it draws them: "
            "signed maps blue (negative) to red (positive) around 0, Grad-CAM black-red-yellow-white from 0, each "
            "pixel of the gray digit blended into its colour in proportion to |map|, each map on its own range. "
            f"Grad-CAM ({layer}) and occlusion are shown at input size.{zero} Remade by `python -m training report`.",
            ATTRIBUTION,
        )

    def attribution_faithfulness(self) -> None:
        """The ranking of the methods by ``analyze``'s deletion and insertion areas and their curves, read from the
        statistics; when the statistics have none, the text names the command that adds them."""
        try:
            section = self.stats.attribution()
        except StatisticsUnavailable as exc:
            self.attribution_text = self.method_table() + f"\n\nNo faithfulness ranking here: {exc}."
            return
        self.attribution_text = self.method_table() + "\n\n" + self.ranking(section)
        name, file = plot_name("attribution"), "attribution-faithfulness.png"
        title = "Faithfulness curves"
        caption = (
            f"The mean probability of the target over the first {section.images:,} {self.stats.data.split} images as "
            "each method's pixels are removed (left, set to 0) or added onto black (right), strongest |map| first, "
            "1/32 of the image per step; dashed: a random order. The legends give the areas of the table above "
            "(`GET /v1/statistics/attribution?format=png`)."
        )
        stored = self.stats.plot(name)
        if stored is None:
            self.add(plots.attribution_figure(section, self.stats.data.split), file, title, caption, ATTRIBUTION)
        else:
            (self.out_dir / file).write_bytes(stored)
            self.figures.append(ReportFigure(file, title, caption, ATTRIBUTION))

    @staticmethod
    def method_table() -> str:
        """The methods the service offers: a one-line definition, the citation and the default parameters."""
        lines = [
            "`POST /v1/attribution/{method}` answers why the classifier decides: a map over the input of how much "
            "each pixel counts for a class (by default the predicted one). Every map here is computed by the "
            "service's own code (`service/attribution/`, plain numpy over onnxruntime, the weights read from the "
            "ONNX file); the gradient methods differentiate the class's logit (before the softmax), occlusion "
            "tracks its probability.",
            "",
            "| method | definition | source | defaults |",
            "|---|---|---|---|",
        ]
        for name, method in METHODS.items():
            definition, source = METHOD_DEFINITIONS[name]
            defaults = ", ".join(f"{key} {spec.default}" for key, spec in method.parameters.items())
            lines.append(f"| `{name}` | {definition} | {source} | {defaults or 'none'} |")
        return "\n".join(lines)

    def ranking(self, section: AttributionStatistics) -> str:
        """The methods ranked by deletion area (lower is better), with their insertion area and rank (higher is
        better) and the random order as the reference, as ``analyze`` stored them."""
        by_deletion = sorted(section.methods, key=lambda name: section.methods[name].deletion_auc)
        by_insertion = sorted(section.methods, key=lambda name: -section.methods[name].insertion_auc)
        lines = [
            f"**Which map to believe?** `python -m training analyze` measured, over the first {section.images:,} "
            f"{self.stats.data.split} images and for the {section.target} class, how the class's probability falls "
            f"as each map's pixels are removed (set to 0) and rises as they are added onto a black image, "
            f"1/{len(section.fractions) - 1} of the image at a time in the order of |map| (deletion and insertion, "
            "Petsiuk, Das & Saenko 2018): a faithful map gives a small deletion area and a large insertion area. A "
            "random pixel order is the reference (`GET /v1/statistics/attribution`).",
            "",
            "| rank | method | parameters | deletion AUC (lower is better) | insertion AUC (higher is better) | "
            "insertion rank |",
            "|---:|---|---|---:|---:|---:|",
        ]
        for rank, name in enumerate(by_deletion, start=1):
            entry = section.methods[name]
            parameters = ", ".join(f"{key} {value}" for key, value in entry.parameters.items()) or "none"
            lines.append(
                f"| {rank} | `{name}` | {parameters} | {entry.deletion_auc:.3f} | {entry.insertion_auc:.3f} | "
                f"{by_insertion.index(name) + 1} |"
            )
        lines.append(
            f"| | random order (reference) | | {section.random_deletion_auc:.3f} | "
            f"{section.random_insertion_auc:.3f} | |"
        )
        beating = [
            name
            for name, entry in section.methods.items()
            if entry.deletion_auc < section.random_deletion_auc and entry.insertion_auc > section.random_insertion_auc
        ]
        lines += [
            "",
            f"On this network `{by_deletion[0]}` ranks first by deletion and `{by_insertion[0]}` by insertion; "
            f"`{by_deletion[-1]}` ranks last by deletion. {len(beating)} of the {len(section.methods)} methods beat "
            "the random order on both areas.",
        ]
        return "\n".join(lines)

    @staticmethod
    def variant_history(folder: Path, row: dict) -> list[float]:
        """A variant's validation accuracy per epoch from its manifest (the comparison's copy if it is absent)."""
        path = folder / row["model"] / MANIFEST_FILE
        if path.is_file():
            return json.loads(path.read_text())["models"][CLASSIFIER]["history"]["val_accuracy"]
        return row["val_accuracy"]

    def variants(self, digit: int = 7) -> None:
        """The activation x optimizer comparison of ``python -m training sweep``, when its results are there: the
        table, the test-accuracy curves overlaid and, for the variants whose ONNX files are present, the conv1
        deconvolutions of one digit."""
        folder = self.model_dir / VARIANTS_DIR
        if not (folder / COMPARISON_JSON).is_file():
            return
        comparison = json.loads((folder / COMPARISON_JSON).read_text())
        rows, recipe = comparison["variants"], comparison["recipe"]
        self.variants_text = (
            f"`python -m training sweep` trained the classifier under {len(rows)} activation x optimizer "
            f"combinations alike: {recipe['epochs']} epoch(s) on {recipe['train_images']:,} training images, batch "
            f"{recipe['batch_size']}, seed {recipe['seed']}, each optimizer at its customary learning rate with a "
            "constant schedule, no shift augmentation. Test metrics on "
            f'{recipe["test_images"]:,} test images from the exported ONNX files; per layer, "active" is the mean '
            'share of filters active per test image by the paper\'s rule, "never active" the filters active in '
            'no test image, "mean norm" the mean L2 norm of its feature maps (`models/variants/comparison.md`).\n\n'
            + (folder / COMPARISON_MD).read_text().strip()
        )
        curves = {row["model"]: self.variant_history(folder, row) for row in rows}
        self.add(
            plots.variant_curves(curves, recipe["epochs"]),
            "variants-curves.png",
            "Test accuracy per epoch",
            f"The test (validation) accuracy after every epoch of each of the {len(curves)} variants, from its "
            "manifest's history: one panel per activation, one line per optimizer, each panel on its own scale.",
            VARIANTS_DIR,
        )
        served = [row["model"] for row in rows if row["model"] in self.registry.models]
        if not served:
            self.variants_text += (
                "\n\nThe variants' ONNX files are not here (they are not shipped), so their "
                "deconvolutions are not drawn; `python -m training sweep` rebuilds them."
            )
            return
        index = self.first[digit]
        names = [CLASSIFIER, *served]
        mosaics = []
        for name in names:
            model = self.registry.models[name]
            mosaics.append(
                tile(projection_of_digit(model, _input(self.images[index]), "conv1"), columns=6, pad_value=128)
            )
        fig = plots.image_grid(
            mosaics,
            names,
            columns=6,
            size=1.8,
            title=f"conv1 deconvolutions of test image #{index} (a {digit}) under each variant",
        )
        self.add(
            fig,
            "variants-deconv-conv1.png",
            "First-layer deconvolutions of one digit",
            f"The 32 conv1 projections of test image #{index} (`POST /v1/deconvolution/conv1?model=<variant>`; "
            "`POST /v1/compare/deconvolution/conv1/{k}` puts one filter of every variant side by side); "
            '"classifier" is the shipped model. Every tile is min-max scaled on its own.',
            VARIANTS_DIR,
        )

    # -- text ------------------------------------------------------------------------------------------------

    def summary_tables(self) -> str:
        entry = self.classifier.entry
        lines = ["| layer | type | output shape | parameters |", "|---|---|---|---:|"]
        for layer in entry.layers:
            lines.append(
                f"| {layer.name} | {layer.type} | {'x'.join(map(str, layer.output_shape))} | {layer.params:,} |"
            )
        lines.append(f"| **total** | | | **{entry.total_params:,}** |")
        training, metrics = entry.training, entry.metrics
        recipe = (
            f"{training['epochs']} epochs, {training['optimizer']} (learning rate {training['learning_rate']}, "
            f"{training['schedule']} schedule), batch {training['batch_size']}, random shifts of up to "
            f"{training['shift']} px, {training['train_images']:,} training images"
        )
        lines += [
            "",
            f"Trained with {recipe}. Test accuracy **{100 * metrics['test_accuracy']:.2f} %** "
            f"(loss {metrics['test_loss']:.4f}) on {metrics['test_images']:,} test images.",
        ]
        return "\n".join(lines)

    def findings_table(self) -> str:
        data = self.stats.data

        def listed(mask: np.ndarray) -> str:
            found = np.flatnonzero(mask)
            return f"{len(found)}" + (f" ({', '.join(map(str, found))})" if 0 < len(found) <= 8 else "")

        lines = [
            "| layer | filters | dataset threshold | never active (image mean) | active in every image "
            "(image mean) | never above the dataset threshold | zero on every image | mean active per image |",
            "|---|---:|---:|---|---|---|---|---:|",
        ]
        for layer in SPATIAL_LAYERS:
            stats = self.stats.layer(layer)
            image_mean = np.asarray(stats.active_counts["image-mean"]).sum(axis=0)
            dataset = np.asarray(stats.active_counts["dataset-mean"]).sum(axis=0)
            dead = np.asarray(stats.norms["all"]["max"]) == 0
            lines.append(
                f"| {layer} | {stats.filters} | {stats.dataset_threshold:.4g} | "
                f"{listed(image_mean == 0)} | {listed(image_mean == data.images)} | {listed(dataset == 0)} | "
                f"{listed(dead)} | {image_mean.sum() / data.images:.1f} |"
            )
        lines += [
            "",
            "Filter indices in parentheses. A filter whose map is zero on every analysed image is a dead "
            "ReLU: on these images it passes nothing to the next layer, and removing it would change no "
            "prediction.",
        ]
        return "\n".join(lines)

    def markdown(self) -> str:
        data = self.stats.data
        ae = self.autoencoder.entry.metrics if self.autoencoder else None
        parts = [
            "# Visualizing and understanding the paper's MNIST network — the figures, reproduced",
            "",
            "Generated by `python -m training report` from the shipped models in `models/` (classifier SHA-256 "
            f"`{self.classifier.entry.sha256[:16]}…`) and their dataset statistics (`models/statistics.json`, "
            f"made by `python -m training analyze` over the {data.images:,} {data.split} images). Do not edit "
            "by hand: rerun the two commands after retraining. Every number here is what the service answers; "
            "norms, thresholds, active filters and deconvolutions are computed by the service's own code "
            "(`service/featuremaps/`) on the exported ONNX models.",
            "",
            "## The network (paper, figure 5)",
            "",
            self.summary_tables(),
        ]
        if ae:
            parts += [
                "",
                f"The autoencoder ({self.autoencoder.entry.total_params:,} parameters) reconstructs the "
                f"test images with binary cross-entropy {ae['test_reconstruction_loss']:.4f} and mean "
                f"squared error {ae['test_mse']:.4f}.",
            ]
        parts += [
            "",
            "## Active filters over the test set in numbers",
            "",
            'Counts from `statistics.json` (norm: L2; "image mean": the paper\'s rule, a filter is active in '
            "an image when its norm is above the mean of that image's norms in the layer; the dataset "
            "threshold is the mean norm over every feature map of every test image).",
            "",
            self.findings_table(),
        ]
        for figure in self.figures:
            if not figure.section:
                parts += ["", f"## {figure.title}", "", f"![{figure.title}]({figure.file})", "", figure.caption]
        for title, text, section in (
            ("Why the network decides: the attribution methods", self.attribution_text, ATTRIBUTION),
            ("Activation and optimizer variants", self.variants_text, VARIANTS_DIR),
        ):
            if not text:
                continue
            parts += ["", f"## {title}", "", text]
            for figure in self.figures:
                if figure.section == section:
                    parts += ["", f"### {figure.title}", "", f"![{figure.title}]({figure.file})", "", figure.caption]
        return "\n".join(parts) + "\n"


def write_report(
    model_dir: Path, data_dir: str | os.PathLike[str] | None, out_dir: Path, top_filters: int = TOP_FILTERS
) -> Path:
    """Draw every figure and write ``out_dir/README.md``; returns its path."""
    report = Report(model_dir, data_dir, out_dir, top_filters)
    report.training_curves()
    report.confusion()
    report.one_image()
    report.per_digit()
    report.norms()
    report.deconvolutions()
    report.top_images()
    report.evolution()
    report.conv1_weights()
    report.autoencoder_figures()
    report.invariance_figures()
    report.optimized_figures()
    report.judge_figure()
    report.attribution_methods()
    report.attribution_faithfulness()
    report.variants()
    path = report.out_dir / "README.md"
    path.write_text(report.markdown())
    written = {figure.file for figure in report.figures}
    for stale in set(p.name for p in report.out_dir.glob("*.png")) - written:
        (report.out_dir / stale).unlink()
    return path
