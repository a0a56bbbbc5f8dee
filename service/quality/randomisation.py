"""The sanity checks of Adebayo et al. (2018): a map that does not change when the model's weights are randomised,
or when another class is explained, does not explain the model.

Model parameter randomisation (cascading, from the last layer to the first): copies of the model's ONNX graph whose
parametrised layers (Conv, ConvTranspose, Gemm, MatMul and the bias Add after a MatMul) have their initializers
re-drawn one more layer at a time, each layer's from its own seeded generator, uniform in ±1/√fan_in (PyTorch's
default initialisation of a layer, which Quantus's ``reset_parameters`` re-draws); the same method explains the
same images for the same targets on each copy, and each randomised map is compared with the original by Spearman's
rank correlation and SSIM of the max-normalised magnitudes (Quantus's MPRT: ``abs=True``, ``normalise=True``).

Random logit (Sixt et al.'s reading of Adebayo et al.'s class check, Quantus's RandomLogit): the map of one other
class, drawn uniformly from a seeded generator, compared with the original by SSIM of the max-normalised signed
maps (Quantus's defaults, ``abs=False``, ``normalise=True``).

Against Quantus 0.6.0: each map is divided by its own largest magnitude (Quantus divides a whole batch by one
maximum, so an image's score there depends on its batch), and SSIM is taken over the 2-D maps (Quantus reshapes
the maps to (N, pixels) first, a 1-D SSIM); Spearman's correlation, which neither choice changes, equals Quantus's
MPRT for the same re-drawn layers.

The verdict: the parameter test passes when the fully randomised model's map has a Spearman correlation with the
original below SPEARMAN_THRESHOLD, the random-logit test when the other class's map has an SSIM below
SSIM_THRESHOLD. A map equal to the original after max-normalising (to SAME_TOLERANCE) has not changed, whatever
the similarity says: two constant maps (a method that ignores the model) have no rank correlation nor SSIM (NaN)
and fail; a NaN between maps that differ (one of them constant) counts as changed. The thresholds are
this service's choice (Adebayo et al. judge by eye, Quantus leaves the reading to the user): 0.5 is halfway
between no and perfect agreement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from service.quality.callables import ExplainerFor, ExplainFn, normalised_by_max
from service.quality.similarity import spearman, ssim

SPEARMAN_THRESHOLD = 0.5
SSIM_THRESHOLD = 0.5
SAME_TOLERANCE = 1e-6  # the largest difference of two max-normalised maps (values in [-1, 1]) deemed the same
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class Layer:
    """A parametrised layer of an ONNX graph: its name (the node's, else its weight's), its initializers (weight
    first, then any bias) and the fan-in of its weight."""

    name: str
    initializers: tuple[str, ...]
    fan_in: int


def _fan_in(node: onnx.NodeProto, shape: tuple[int, ...]) -> int:
    """The weight's fan-in as PyTorch's initialisation counts it (a convolution's: the second axis times the
    kernel; a Gemm's with transB: the second axis; a MatMul's: the first)."""
    if node.op_type in ("Conv", "ConvTranspose"):
        return int(np.prod(shape[1:]))
    if node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
        return shape[1]
    return shape[0]


def parametrised_layers(graph: onnx.ModelProto) -> list[Layer]:
    """The graph's parametrised layers in node order (first layer first)."""
    shapes = {init.name: tuple(init.dims) for init in graph.graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers = []
    for node in graph.graph.node:
        if node.op_type not in WEIGHTED_OPS or len(node.input) < 2 or node.input[1] not in shapes:
            continue
        names = [node.input[1], *(name for name in node.input[2:] if name in shapes)]
        if node.op_type == "MatMul":
            adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
            names += [name for add in adds[:1] for name in add.input if name in shapes]
        layers.append(Layer(node.name or names[0], tuple(names), _fan_in(node, shapes[names[0]])))
    return layers


def randomised(graph: onnx.ModelProto, layers: list[Layer], seed: int) -> onnx.ModelProto:
    """A copy of ``graph`` with the initializers of ``layers`` re-drawn uniform in ±1/√fan_in, layer k of the list
    from generator (seed, k) whatever the other layers."""
    copy = onnx.ModelProto()
    copy.CopyFrom(graph)
    by_name = {init.name: init for init in copy.graph.initializer}
    for k, layer in enumerate(layers):
        rng = np.random.default_rng([seed, k])
        bound = 1 / np.sqrt(layer.fan_in)
        for name in layer.initializers:
            old = numpy_helper.to_array(by_name[name])
            new = rng.uniform(-bound, bound, old.shape).astype(old.dtype)
            by_name[name].CopyFrom(numpy_helper.from_array(new, name))
    return copy


@dataclass(frozen=True)
class LayerSimilarity:
    """The similarity (N,) of each image's map on the model randomised down to ``layer`` to its original map, and
    whether the two are the same map (N,) bool."""

    layer: str
    spearman: np.ndarray
    ssim: np.ndarray
    same: np.ndarray


def compared(original: np.ndarray, changed: np.ndarray, magnitudes: bool) -> tuple[np.ndarray, np.ndarray]:
    """(N,) Spearman and (N,) SSIM of each pair of (N, H, W) maps after max-normalising them (and taking their
    magnitudes with ``magnitudes``)."""
    a, b = normalised_by_max(original), normalised_by_max(changed)
    if magnitudes:
        a, b = np.abs(a), np.abs(b)
    return np.array([spearman(x, y) for x, y in zip(a, b)]), np.array([ssim(x, y) for x, y in zip(a, b)])


def same_maps(original: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """(N,) whether each pair of (N, H, W) maps is the same after max-normalising (to SAME_TOLERANCE)."""
    difference = np.abs(normalised_by_max(original) - normalised_by_max(changed)).reshape(len(original), -1)
    return difference.max(axis=1) <= SAME_TOLERANCE


def randomised_cascade(graph: onnx.ModelProto, seed: int = 0) -> list[tuple[str, onnx.ModelProto]]:
    """The cascade's copies of ``graph``, last layer first: copy k has its last k+1 parametrised layers re-drawn,
    named after the layer it re-draws last."""
    cascade = parametrised_layers(graph)[::-1]
    return [(layer.name, randomised(graph, cascade[: k + 1], seed)) for k, layer in enumerate(cascade)]


def cascade_steps(graph: onnx.ModelProto, most: int | None = None) -> list[tuple[str, list[Layer]]]:
    """The cascade's steps, last layer first: each step's name (the layer it re-draws last) and the layers re-drawn
    by then. With ``most``, the layers are split into at most that many consecutive groups, one step each (the last
    step still re-draws them all): a deep model's cascade in fewer copies."""
    cascade = parametrised_layers(graph)[::-1]
    groups = [group for group in np.array_split(np.arange(len(cascade)), min(most or len(cascade), len(cascade)))]
    return [(cascade[group[-1]].name, cascade[: group[-1] + 1]) for group in groups if len(group)]


def cascade_similarity(
    explainers: Iterable[tuple[str, ExplainFn]], images: np.ndarray, targets: np.ndarray, maps: np.ndarray
) -> list[LayerSimilarity]:
    """The maps of each (layer, method over the copy randomised down to it) of the cascade, compared with
    ``maps``. One explanation of all images per layer."""
    results = []
    for layer, explain in explainers:
        changed = np.asarray(explain(images, targets))
        rank, structure = compared(maps, changed, magnitudes=True)
        results.append(LayerSimilarity(layer, rank, structure, same_maps(maps, changed)))
    return results


def parameter_randomisation(
    graph: onnx.ModelProto,
    explainer_for: ExplainerFor,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    seed: int = 0,
) -> list[LayerSimilarity]:
    """Cascading randomisation from the last layer: for each k, the maps on ``graph`` with its last k+1
    parametrised layers re-drawn, compared with ``maps``. One explanation of all images per layer."""
    explainers = [(layer, explainer_for(copy)) for layer, copy in randomised_cascade(graph, seed)]
    return cascade_similarity(explainers, images, targets, maps)


def other_classes(targets: np.ndarray, classes: int, seed: int = 0) -> np.ndarray:
    """A class other than each target, uniform over the other ``classes`` − 1, from generator ``seed``."""
    drawn = np.random.default_rng(seed).integers(0, classes - 1, len(targets))
    return drawn + (drawn >= np.asarray(targets))


def random_logit(
    explain: ExplainFn, images: np.ndarray, maps: np.ndarray, others: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) the SSIM of each image's map to its map for the class ``others`` (max-normalised, signed) and (N,)
    whether the two are the same map."""
    other_maps = np.asarray(explain(images, others))
    return compared(maps, other_maps, magnitudes=False)[1], same_maps(maps, other_maps)


def passes(
    spearman_fully_randomised: float, ssim_other_class: float, same_randomised: bool, same_other_class: bool
) -> tuple[bool, bool]:
    """Whether the parameter test and the random-logit test pass for one image: the similarity below its
    threshold, or NaN between maps that are not the same."""
    return (
        not (same_randomised or spearman_fully_randomised >= SPEARMAN_THRESHOLD),
        not (same_other_class or ssim_other_class >= SSIM_THRESHOLD),
    )
