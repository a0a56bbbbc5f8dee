"""Active filters: one image's feature-map norms, the counts per digit under each rule, the norm distributions,
and the table of what the statistics find per layer."""

from __future__ import annotations

import numpy as np

from service.contract import SPATIAL_LAYERS
from service.studies.layers import layer_activity
from service.studies.statistics import DatasetStatistics
from training import plots
from training.report.folder import FigureFolder
from training.report.sources import Sources, model_input

RULE_NAMES = {
    "image-mean": "image mean (the paper's rule)",
    "dataset-mean": "dataset threshold",
    "filter-label-mean": "filter's mean over the digit",
}


def one_image(sources: Sources, folder: FigureFolder, digit: int = 7) -> None:
    """Every feature map's norm of one test digit per spatial layer, the active ones in red (paper, figure 8)."""
    index = sources.first[digit]
    outputs = sources.classifier.run(model_input(sources.images[index]), list(SPATIAL_LAYERS))
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
        t = sources.stats.dataset_threshold(layer)
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
    mosaic["input"].imshow(sources.images[index], cmap="gray")
    mosaic["input"].set_xticks([])
    mosaic["input"].set_yticks([])
    mosaic["input"].set_title("input", fontsize=10)
    fig.suptitle(f"Active filters of one image (test image #{index}, a {digit})", fontsize=11)
    folder.add(
        fig,
        "active-filters-one-image.png",
        "Active filters of one image (paper, figure 8)",
        f"The L2 norm of every feature map of conv1, conv2 and pool for test image #{index} (left). "
        "A filter is active (red) when its norm is above the mean of the image's norms in that layer "
        "(dashed) — the paper's rule, the service's `POST /v1/active-filters/{layer}`; the dotted line "
        "is the dataset threshold (`threshold=dataset`).",
    )


def per_digit(sources: Sources, folder: FigureFolder) -> None:
    """Per layer, how often each filter is active for each digit; conv1 under the three rules (paper,
    figures 9-10)."""
    counts = sources.stats.data.label_counts
    for layer in SPATIAL_LAYERS:
        stats = sources.stats.layer(layer)
        fig = plots.active_heatmap(
            stats.active_counts["image-mean"],
            counts,
            layer,
            "image-mean",
            sources.stats.data.split,
            stats.dataset_threshold,
        )
        folder.add(
            fig,
            f"active-filters-per-digit-{layer}.png",
            f"Occurrence of active filters per digit, {layer} (paper, figures 9-10)",
            f"For each digit and each {layer} filter, the share of the digit's test images in which the "
            "filter is active by the paper's rule (norm above the image's mean norm), from "
            "`statistics.json` (`GET /v1/statistics/active-filters/" + layer + "`).",
        )
    layer = "conv1"
    stats = sources.stats.layer(layer)
    share = {
        rule: 100 * np.asarray(stats.active_counts[rule]) / np.asarray(counts)[:, None] for rule in stats.active_counts
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
    folder.add(
        fig,
        f"active-filters-rules-{layer}.png",
        f'Three rules for "active", {layer} (beyond the paper)',
        "The same counts under the three rules `statistics.json` holds: above the image's mean norm "
        "(section 3.2.1, the paper's), above the dataset threshold (the mean of all norms, section 3.2.2), "
        "and above the filter's own mean norm over the digit's images (the other reading of 3.2.1, "
        "which by construction makes every filter active in part of every digit).",
    )


def norms(sources: Sources, folder: FigureFolder) -> None:
    """Per layer, the distribution of each filter's norm over the analysed images (paper, figures 11-12)."""
    for layer in SPATIAL_LAYERS:
        stats = sources.stats.layer(layer)
        fig = plots.norm_boxplot(
            stats.norms["all"],
            layer,
            None,
            sources.stats.data.images,
            sources.stats.data.split,
            stats.dataset_threshold,
            1.04 * max(stats.norms["all"]["max"]),
        )
        folder.add(
            fig,
            f"norms-{layer}.png",
            f"Norm distribution per filter, {layer} (paper, figures 11-12)",
            f"For each {layer} filter, the distribution of its feature-map L2 norm over the test images, "
            "all on one scale: box from the first to the third quartile, median (red), mean (triangle), "
            "whiskers to the minimum and maximum; the dashed line is the dataset threshold. Per digit: "
            f"`GET /v1/statistics/norms/{layer}?label=d&format=png`.",
        )


def findings_table(statistics: DatasetStatistics) -> str:
    """Per spatial layer: its dataset threshold, the filters never or always active, never above the threshold or
    zero on every image, and the mean count of active filters per image."""
    data = statistics.data

    def listed(mask: np.ndarray) -> str:
        found = np.flatnonzero(mask)
        return f"{len(found)}" + (f" ({', '.join(map(str, found))})" if 0 < len(found) <= 8 else "")

    lines = [
        "| layer | filters | dataset threshold | never active (image mean) | active in every image "
        "(image mean) | never above the dataset threshold | zero on every image | mean active per image |",
        "|---|---:|---:|---|---|---|---|---:|",
    ]
    for layer in SPATIAL_LAYERS:
        stats = statistics.layer(layer)
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
