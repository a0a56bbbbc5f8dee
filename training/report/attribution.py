"""Why the network decides: every attribution method on a few test digits, and their faithfulness ranking and
curves from the statistics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.attribution import METHODS
from service.contract import AttributionStatistics, plot_name
from service.pictures.heatmap import heat_map
from service.studies.explain import explain
from service.studies.statistics import StatisticsUnavailable
from training import plots
from training.quality_plot import quality_figure
from training.report.folder import FigureFolder
from training.report.sources import Sources, model_input

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
    "grad-cam-plus-plus": (
        "Grad-CAM with each map's weight a positive-gradient sum weighted by second- and third-order terms",
        "Chattopadhay et al. 2018, *Grad-CAM++*",
    ),
    "hires-cam": (
        "ReLU(sum_k A^k * d logit / d A^k): each unit's activation times its own gradient, no spatial mean",
        "Draelos & Carin 2020, *Use HiResCAM instead of Grad-CAM*",
    ),
    "xgrad-cam": (
        "Grad-CAM with each map's weight its gradient averaged in proportion to the map's activations",
        "Fu et al. 2020, *Axiom-based Grad-CAM*",
    ),
    "layer-cam": (
        "ReLU(sum_k ReLU(d logit / d A^k) * A^k): each unit weighted by its own positive gradient",
        "Jiang et al. 2021, *LayerCAM*",
    ),
    "score-cam": (
        "each feature map, scaled to [0, 1], used as a mask on the input; its weight the target's softmax score "
        "on the masked input",
        "Wang et al. 2020, *Score-CAM*",
    ),
    "eigen-cam": (
        "the layer's output projected on its first principal component; class-agnostic",
        "Muhammad & Yeasin 2020, *Eigen-CAM*",
    ),
    "ablation-cam": (
        "each feature map's weight the target's relative drop when that map is set to 0",
        "Desai & Ramaswamy 2020, *Ablation-CAM*",
    ),
    "rise": (
        "the mean of random upsampled binary masks weighted by the target's probability on the masked input",
        "Petsiuk, Das & Saenko 2018, *RISE*",
    ),
    "kernel-shap": (
        "Shapley values of the image's segments estimated by weighted least squares over sampled coalitions",
        "Lundberg & Lee 2017, *A unified approach to interpreting model predictions*",
    ),
    "feature-ablation": (
        "the drop of the target's probability when each segment is set to black",
        "Captum's FeatureAblation; Zeiler & Fergus 2014 over squares",
    ),
    "occlusion": (
        "the drop of the target's probability when a black square covers each position; a pixel's value is the "
        "mean drop of the squares that cover it",
        "Zeiler & Fergus 2014, section 4.2",
    ),
}


@dataclass
class AttributionTiles:
    """Heat maps of a few digits by every attribution method: ``tiles`` (digits, 1 + methods, 28, 28, 3) uint8 with
    the gray input first, a label per row (test index, true label, prediction, probability), whether each method's
    map is signed, and the (test index, method) pairs whose map is zero everywhere."""

    tiles: np.ndarray
    labels: list[str]
    signed: list[bool]
    empty: list[tuple[int, str]]


def attribution_tiles(sources: Sources, digits: tuple[int, ...] = ATTRIBUTION_DIGITS) -> AttributionTiles:
    """The first test image of each of ``digits`` and its map by every attribution method for the predicted class,
    computed by the service (``service.studies.explain``) and coloured as it colours them (``heat_map``: diverging
    for signed maps, sequential for Grad-CAM's; Grad-CAM and occlusion at input size)."""
    indices = [sources.first[d] for d in digits]
    images = model_input(sources.images[indices])
    tiles = np.repeat(sources.images[indices][:, None, :, :, None], 1 + len(METHODS), axis=1).repeat(3, axis=-1)
    signed, empty = [], []
    for column, name in enumerate(METHODS, start=1):
        result = explain(sources.classifier, images, name)
        signed.append(result.signed)
        for row, image in enumerate(images):
            tiles[row, column] = heat_map(image, result.pixels[row], result.signed).rgb
            if not np.any(result.values[row]):
                empty.append((indices[row], name))
    labels = [
        f"#{index}: a {sources.labels[index]}\npredicted {p}\np = {q:.3f}"
        for index, p, q in zip(indices, result.predicted, result.probabilities)
    ]
    return AttributionTiles(tiles, labels, signed, empty)


def attribution_methods(sources: Sources, folder: FigureFolder, digits: tuple[int, ...] = ATTRIBUTION_DIGITS) -> None:
    """The seven methods side by side on a few test digits (the README shows this figure too)."""
    drawn = attribution_tiles(sources, digits)
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
    folder.add(
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


def attribution_faithfulness(sources: Sources, folder: FigureFolder) -> str:
    """The ranking of the methods by ``analyze``'s deletion and insertion areas and their curves, read from the
    statistics: the section's text, its figure saved into ``folder``; when the statistics have none, the text names
    the command that adds them."""
    try:
        section = sources.stats.attribution()
    except StatisticsUnavailable as exc:
        return method_table() + f"\n\nNo faithfulness ranking here: {exc}."
    text = method_table() + "\n\n" + ranking(section, sources.stats.data.split)
    name, file = plot_name("attribution"), "attribution-faithfulness.png"
    title = "Faithfulness curves"
    caption = (
        f"The mean probability of the target over the first {section.images:,} {sources.stats.data.split} images as "
        "each method's pixels are removed (left, set to 0) or added onto black (right), strongest |map| first, "
        "1/32 of the image per step; dashed: a random order. The legends give the areas of the table above "
        "(`GET /v1/statistics/attribution?format=png`)."
    )
    stored = sources.stats.plot(name)
    if stored is None:
        folder.add(plots.attribution_figure(section, sources.stats.data.split), file, title, caption, ATTRIBUTION)
    else:
        folder.add_png(stored, file, title, caption, ATTRIBUTION)
    return text + quality_table(sources, folder)


def quality_table(sources: Sources, folder: FigureFolder) -> str:
    """The explanation-quality table of ``analyze`` (``training.quality_table``) as a figure saved into ``folder``,
    and a sentence on its sample; empty text when the statistics have none."""
    table = sources.stats.data.explanation_quality
    if table is None:
        return ""
    split = sources.stats.data.split
    title = "Explanation quality"
    caption = (
        f"Every method's quality metrics over {table.images} {split} images drawn with seed {table.seed}: each cell "
        "the mean, coloured by the method's rank in its column (green best; docs: Explanation quality; "
        "`GET /v1/statistics/attribution?format=png&figure=quality`)."
    )
    stored = sources.stats.plot(plot_name("explanation-quality"))
    if stored is None:
        folder.add(quality_figure(table, split), "explanation-quality.png", title, caption, ATTRIBUTION)
    else:
        folder.add_png(stored, "explanation-quality.png", title, caption, ATTRIBUTION)
    return (
        f"\n\nBeyond deletion and insertion, every quality metric of `service/quality/` over a seeded sample of "
        f"{table.images} {split} images (indices {', '.join(map(str, table.indices))}) ranks the methods in the "
        "explanation-quality figure."
    )


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


def ranking(section: AttributionStatistics, split: str) -> str:
    """The methods ranked by deletion area (lower is better), with their insertion area and rank (higher is
    better) and the random order as the reference, as ``analyze`` stored them over the ``split`` images."""
    by_deletion = sorted(section.methods, key=lambda name: section.methods[name].deletion_auc)
    by_insertion = sorted(section.methods, key=lambda name: -section.methods[name].insertion_auc)
    lines = [
        f"**Which map to believe?** `python -m training analyze` measured, over the first {section.images:,} "
        f"{split} images and for the {section.target} class, how the class's probability falls "
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
        f"| | random order (reference) | | {section.random_deletion_auc:.3f} | {section.random_insertion_auc:.3f} | |"
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
