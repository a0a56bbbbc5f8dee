"""Figures of the dataset statistics and of the paper report, drawn with matplotlib (Agg, no pyplot state).

Every figure has a title, labelled axes and, where colour carries a value, a colour bar. PNGs are written at
100 dpi (readable at 1x) and palette-quantised to at most 256 colours, which keeps them small: these files
are committed and served as they are.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import ListedColormap, LogNorm, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from service.contract import (  # noqa: E402
    CLASSIFIER,
    AttributionStatistics,
    Manifest,
    Statistics,
    TransformInvariance,
    UnlabelledStatistics,
    plot_name,
)
from service.pictures.heatmap import DIVERGING, SEQUENTIAL, colormap  # noqa: E402
from training.quality_plot import quality_figure  # noqa: E402

DPI = 100
RULE_TEXT = {
    "image-mean": "active: norm above the mean norm of the image's layer (the paper's rule)",
    "dataset-mean": "active: norm above the dataset threshold T = {threshold:.3g} (mean of all norms)",
    "filter-label-mean": "active: norm above the filter's own mean norm over the label's images",
}
LABELS = range(10)
MAX_CLASS_TICKS = 20


def save(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a palette PNG (no timestamp, so the same figure gives the same bytes)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    image = Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
    return path


def _filter_ticks(ax, count: int) -> None:
    step = 1 if count <= 16 else 2 if count <= 32 else 4
    ax.set_xticks(range(0, count, step))
    ax.tick_params(axis="x", labelsize=8)


def _width(filters: int) -> float:
    return 7.0 if filters <= 32 else 10.0


def active_heatmap(
    counts: Sequence[Sequence[int]],
    label_counts: Sequence[int],
    layer: str,
    rule: str,
    split: str,
    dataset_threshold: float,
) -> Figure:
    """Labels x filters: the share of each label's images in which each filter is active (figures 9-10)."""
    share = 100 * np.asarray(counts, float) / np.maximum(np.asarray(label_counts, float), 1)[:, None]
    filters = share.shape[1]
    fig = Figure(figsize=(_width(filters), 3.9), layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(share, aspect="auto", cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
    if len(label_counts) <= MAX_CLASS_TICKS:
        ax.set_yticks(range(len(label_counts)))
    _filter_ticks(ax, filters)
    ax.set_xlabel(f"{layer} filter")
    ax.set_ylabel("digit (true label)")
    ax.set_title(
        f"{layer}: active filters per digit, {sum(label_counts):,} {split} images\n"
        f"{RULE_TEXT[rule].format(threshold=dataset_threshold)}",
        fontsize=10,
    )
    fig.colorbar(shown, ax=ax, label="% of the digit's images", pad=0.01)
    return fig


def active_bars(
    counts: Sequence[int], images: int, layer: str, rule: str, label: int, split: str, dataset_threshold: float
) -> Figure:
    """One digit: in how many of its images each filter is active."""
    share = 100 * np.asarray(counts, float) / images
    filters = len(share)
    fig = Figure(figsize=(_width(filters), 3.3), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(filters), share, width=0.8, color="#3b6ea8")
    ax.set_xlim(-0.7, filters - 0.3)
    ax.set_ylim(0, 100)
    _filter_ticks(ax, filters)
    ax.set_xlabel(f"{layer} filter")
    ax.set_ylabel(f"% of the {images:,} images")
    never = int((np.asarray(counts) == 0).sum())
    ax.set_title(
        f"{layer}: active filters on digit {label} ({split} set; {never} of {filters} never active)\n"
        f"{RULE_TEXT[rule].format(threshold=dataset_threshold)}",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3)
    return fig


def norm_boxplot(
    summary: Mapping[str, Sequence[float]],
    layer: str,
    label: int | None,
    images: int,
    split: str,
    dataset_threshold: float,
    ymax: float | None = None,
) -> Figure:
    """One box per filter on one scale (figures 11-12): box = quartiles, line = median, whiskers = min and max."""
    filters = len(summary["median"])
    x = np.arange(filters)
    q1, q3 = np.asarray(summary["q1"]), np.asarray(summary["q3"])
    fig = Figure(figsize=(_width(filters), 3.8), layout="constrained")
    ax = fig.subplots()
    # one collection per element (not one artist per box): fast to draw, identical to a min/max box plot
    ax.vlines(x, summary["min"], summary["max"], color="#28507a", linewidth=0.8, zorder=1)
    ax.hlines(
        np.concatenate([summary["min"], summary["max"]]),
        np.tile(x - 0.18, 2),
        np.tile(x + 0.18, 2),
        color="#28507a",
        linewidth=0.8,
        zorder=1,
    )
    ax.bar(x, q3 - q1, bottom=q1, width=0.6, color="#cfe0f3", edgecolor="#28507a", linewidth=0.8, zorder=2)
    ax.hlines(summary["median"], x - 0.3, x + 0.3, color="#c0392b", linewidth=1.2, zorder=3)
    ax.scatter(x, summary["mean"], marker="^", s=9, color="black", zorder=4, linewidths=0)
    ax.axhline(
        dataset_threshold,
        color="#e67e22",
        linestyle="--",
        linewidth=1,
        label=f"dataset threshold T = {dataset_threshold:.3g}",
    )
    _filter_ticks(ax, filters)
    ax.set_xlim(-0.7, filters - 0.3)
    ax.set_ylim(0, ymax)
    ax.set_xlabel(f"{layer} filter")
    ax.set_ylabel("L2 norm of the feature map")
    who = "all digits" if label is None else f"digit {label}"
    ax.set_title(
        f"{layer}: feature-map norm per filter, {who} ({images:,} {split} images)\n"
        "box: quartiles, red line: median, triangle: mean, whiskers: min and max",
        fontsize=10,
    )
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def confusion_matrix(matrix: Sequence[Sequence[int]], accuracy: float) -> Figure:
    """Counts of (true, predicted) digits on the test set (figure 7), log colour scale, every cell written."""
    counts = np.asarray(matrix)
    fig = Figure(figsize=(5.6, 4.8), layout="constrained")
    ax = fig.subplots()
    shown = ax.imshow(np.ma.masked_equal(counts, 0), cmap="Blues", norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)))
    for (i, j), value in np.ndenumerate(counts):
        if value:
            dark = value > np.sqrt(counts.max())
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(f"Confusion matrix, {counts.sum():,} test images\naccuracy {100 * accuracy:.2f} %", fontsize=10)
    fig.colorbar(shown, ax=ax, label="images (log scale)", shrink=0.85)
    return fig


def training_history(history: Mapping[str, Sequence[float]], model: str, training: Mapping) -> Figure:
    """Per-epoch training and validation curves of every metric (figure 6); validation is the test set."""
    metrics = [key for key in history if not key.startswith("val_") and key != "seconds"]
    fig = Figure(figsize=(4.2 * len(metrics), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, metric in zip(axes, metrics):
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], marker="o", markersize=3, label="training")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="s", markersize=3, label="validation (test set)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.set_title(metric.replace("_", " "), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    recipe = (
        f"{training.get('optimizer', '?')}, {len(history[metrics[0]])} epochs, batch {training.get('batch_size', '?')}"
    )
    fig.suptitle(f"{model} training ({recipe})", fontsize=11)
    return fig


def statistics_plots(
    statistics: Statistics | UnlabelledStatistics,
    manifest: Manifest | None,
    out_dir: Path,
    progress: bool = True,
) -> dict[str, Path]:
    """Render every plot the statistics endpoints serve into ``out_dir``; returns name -> file.

    Names: ``active-filters-{layer}-{rule}[-label-{d}]``, ``norms-{layer}[-label-{d}]``, ``confusion-matrix``,
    ``training-history-{model}``. With the shipped models' ``manifest`` the per-label variants are drawn too (one
    small file each) so that every ``?label=`` answers with a real figure without matplotlib in the service, and
    the confusion matrix and training histories; an imported model's (``manifest`` None) are the layer-wide
    plots only, and unlabelled statistics have no active-filter plots.
    """
    split = statistics.split
    labelled = isinstance(statistics, Statistics)
    per_label = manifest is not None and labelled
    jobs = {}
    for layer, stats in statistics.layers.items():
        t = stats.dataset_threshold
        for rule, counts in stats.active_counts.items() if labelled else ():
            label_counts = statistics.label_counts
            jobs[plot_name("active-filters", layer, rule)] = (
                active_heatmap,
                counts,
                label_counts,
                layer,
                rule,
                split,
                t,
            )
            for d in LABELS if per_label else ():
                jobs[plot_name("active-filters", layer, rule, d)] = (
                    active_bars,
                    counts[d],
                    label_counts[d],
                    layer,
                    rule,
                    d,
                    split,
                    t,
                )
        ymax = 1.04 * max(stats.norms["all"]["max"])
        jobs[plot_name("norms", layer)] = (
            norm_boxplot,
            stats.norms["all"],
            layer,
            None,
            statistics.images,
            split,
            t,
            ymax,
        )
        for d in LABELS if per_label else ():
            jobs[plot_name("norms", layer, label=d)] = (
                norm_boxplot,
                stats.norms[str(d)],
                layer,
                d,
                statistics.label_counts[d],
                split,
                t,
                ymax,
            )
    if manifest is None:
        return _draw(jobs, out_dir, progress)
    classifier = manifest.models[CLASSIFIER]
    jobs[plot_name("confusion-matrix")] = (
        confusion_matrix,
        classifier.metrics["confusion_matrix"],
        classifier.metrics["test_accuracy"],
    )
    for name, entry in manifest.models.items():
        jobs[plot_name("training-history", name)] = (training_history, entry.history, name, entry.training)
    if statistics.invariance is not None:
        for transform, curves in statistics.invariance.transforms.items():
            jobs[plot_name("invariance", transform)] = (invariance_figure, curves, transform, None, split)
            for d in LABELS:
                jobs[plot_name("invariance", transform, label=d)] = (invariance_figure, curves, transform, d, split)
    if statistics.attribution is not None:
        jobs[plot_name("attribution")] = (attribution_figure, statistics.attribution, split)
    if statistics.explanation_quality is not None:
        jobs[plot_name("explanation-quality")] = (quality_figure, statistics.explanation_quality, split)
    return _draw(jobs, out_dir, progress)


def _draw(jobs: Mapping[str, tuple], out_dir: Path, progress: bool) -> dict[str, Path]:
    """Every job (name -> drawing function and its arguments) saved as ``out_dir/<name>.png``; name -> file."""
    written = {}
    for name, (draw, *args) in tqdm(jobs.items(), desc="plots", unit="png", disable=not progress):
        written[name] = save(draw(*args), out_dir / f"{name}.png")
    return written


INVARIANCE_COLOURS = {"conv1": "#1f77b4", "conv2": "#ff7f0e", "pool": "#2ca02c", "dense1": "#d62728"}


def invariance_figure(curves: TransformInvariance, transform: str, label: int | None, split: str) -> Figure:
    """Zeiler and Fergus' figure 5 averaged over images: each layer's mean distance from the untransformed image
    (relative to its largest), the mean probability of the true digit, and the share still classified as it."""
    group = curves.all if label is None else curves.digits[label]
    x = np.asarray(curves.amounts)
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    distance, probability, accuracy = fig.subplots(1, 3)
    for layer, values in group.distance.items():
        values = np.asarray(values)
        top = values.max() if values.max() > 0 else 1.0
        distance.plot(x, values / top, color=INVARIANCE_COLOURS.get(layer), label=f"{layer} (max {top:.3g})")
    distance.set_ylabel("mean distance / its max")
    distance.legend(fontsize=8)
    probability.plot(x, group.probability, color="#d62728")
    probability.set_ylabel("mean probability of the true digit")
    accuracy.plot(x, 100 * np.asarray(group.accuracy), color="black", marker=".")
    accuracy.set_ylabel("% still classified as the true digit")
    for ax in (probability, accuracy):
        ax.set_ylim(0, 1.02 if ax is probability else 102)
    for ax in (distance, probability, accuracy):
        ax.set_xlabel(f"{transform} ({curves.unit})")
        ax.grid(alpha=0.3)
    who = "every digit" if label is None else f"the {group.images} images of digit {label}"
    fig.suptitle(f"{transform}: invariance over {who} ({split} set, first images)", fontsize=11)
    return fig


def variant_curves(curves: Mapping[str, Sequence[float]], epochs: int | None = None) -> Figure:
    """Validation (test-set) accuracy after every epoch of each variant of ``python -m training sweep``, in one figure:
    a panel per activation, a line per optimizer (the same colour in every panel), each panel scaled to its own
    range so that close curves stay apart."""
    activations = list(dict.fromkeys(name.split("-")[0] for name in curves))
    optimizers = list(dict.fromkeys(name.split("-")[1] for name in curves))
    columns = min(len(activations), 2)
    rows = -(-len(activations) // columns)
    fig = Figure(figsize=(5 * columns, 3.4 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    colours = {optimizer: f"C{i}" for i, optimizer in enumerate(optimizers)}
    longest = max(len(curve) for curve in curves.values())
    for ax, activation in zip(axes, activations, strict=False):
        for name, curve in curves.items():
            if name.split("-")[0] == activation:
                optimizer = name.split("-")[1]
                ax.plot(
                    np.arange(1, len(curve) + 1),
                    100 * np.asarray(curve),
                    marker="o",
                    markersize=3,
                    color=colours[optimizer],
                    label=optimizer,
                )
        ax.set_title(activation, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        ax.set_xticks(np.arange(1, longest + 1, max(1, longest // 12)))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in axes[len(activations) :]:
        ax.set_visible(False)
    budget = f", {epochs} epochs" if epochs else ""
    fig.suptitle(f"Test accuracy per epoch of all {len(curves)} activation x optimizer variants{budget}", fontsize=11)
    return fig


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    columns: int = 8,
    title: str = "",
    cmap: str = "gray",
    size: float = 1.0,
    highlight: Sequence[bool] | None = None,
    row_labels: Sequence[str] | None = None,
) -> Figure:
    """Small images in a grid with optional per-image titles, a red frame on highlighted ones, each min-max scaled."""
    count = len(images)
    rows = -(-count // columns)
    fig = Figure(figsize=(columns * size + (0.6 if row_labels else 0), rows * size * 1.12 + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, columns)).reshape(rows, columns)
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= count:
            ax.axis("off")
            continue
        ax.imshow(images[i], cmap=cmap, interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=7, pad=2)
        if highlight is not None:
            for spine in ax.spines.values():
                spine.set_color("#d62728" if highlight[i] else "#bbbbbb")
                spine.set_linewidth(2 if highlight[i] else 0.5)
    if row_labels:
        for r, text in enumerate(row_labels):
            axes[r, 0].set_ylabel(text, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def attribution_figure(section: AttributionStatistics, split: str) -> Figure:
    """Deletion and insertion curves of every attribution method (mean target probability as the map's pixels
    are removed or added), with a random pixel order dashed; the legend gives each area."""
    x = np.asarray(section.fractions)
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    deletion, insertion = fig.subplots(1, 2)
    colours = matplotlib.colormaps["tab20"]  # one colour a method, up to 20 methods
    ranked = sorted(section.methods.items(), key=lambda item: item[1].deletion_auc)
    for k, (name, entry) in enumerate(ranked):
        deletion.plot(x, entry.deletion, color=colours(k % 20), label=f"{name} ({entry.deletion_auc:.3f})")
        insertion.plot(x, entry.insertion, color=colours(k % 20), label=f"{name} ({entry.insertion_auc:.3f})")
    deletion.plot(x, section.random_deletion, "k--", label=f"random order ({section.random_deletion_auc:.3f})")
    insertion.plot(x, section.random_insertion, "k--", label=f"random order ({section.random_insertion_auc:.3f})")
    for ax, what, better in ((deletion, "removed (set to 0)", "lower"), (insertion, "added to black", "higher")):
        ax.set_xlabel(f"share of pixels {what}, strongest |map| first")
        ax.set_ylabel("mean probability of the target")
        ax.set_title(
            f"{'deletion' if ax is deletion else 'insertion'}: area in the legend, {better} is better", fontsize=10
        )
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        f"Which map to believe: faithfulness of the attribution methods over the first {section.images} {split} "
        f"images (target: the {section.target} class)",
        fontsize=11,
    )
    return fig


def attribution_methods_figure(
    tiles: np.ndarray, methods: Sequence[str], row_labels: Sequence[str], signed: Sequence[bool], title: str
) -> Figure:
    """A grid of attribution heat maps: ``tiles`` (rows, 1 + methods, H, W, 3) uint8, the input first in each row,
    then one already-coloured map per method (``service.pictures.heatmap``); ``methods`` over the columns,
    ``row_labels`` beside the rows, and a colour bar for each of the service's two colour maps that is used."""
    rows, columns = tiles.shape[:2]
    fig = Figure(figsize=(1.3 * columns + 1.2, 1.3 * rows + 1.4), layout="constrained")
    axes = np.atleast_2d(fig.subplots(rows, columns))
    for r in range(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.imshow(tiles[r, c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title("input" if c == 0 else methods[c - 1], fontsize=8)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    used = {True: ("diverging: -max|map| ... 0 ... +max|map|", DIVERGING), False: ("sequential: 0 ... max", SEQUENTIAL)}
    for kind in sorted(set(signed)):
        text, anchors = used[kind]
        scale = ListedColormap(colormap(np.linspace(0, 1, 256), anchors) / 255.0)
        bar = fig.colorbar(
            ScalarMappable(Normalize(-1 if kind else 0, 1), scale),
            ax=axes,
            orientation="horizontal",
            shrink=0.4,
            aspect=40,
            pad=0.01,
        )
        bar.set_label(f"{text} (each map on its own range)", fontsize=8)
        bar.set_ticks([-1, 0, 1] if kind else [0, 1], labels=["-max", "0", "+max"] if kind else ["0", "max"])
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    return fig
