"""The inference steps that routes, statistics and the paper report share, written once.

- capability questions: does a model classify, which of its layers have feature maps, which can be projected;
- layer activity: feature-map norms, the threshold and the active filters of one layer for one image;
- projections: filters of a layer projected back to pixel space for one or many images (deconvnet).

Errors are domain errors (``UnknownLayer``, ``NotApplicable``), which the HTTP wing maps to 404 and 422.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.contract import PROBABILITIES
from service.errors import NotApplicableError, NotFoundError
from service.featuremaps.deconv import PROJECTABLE_LAYERS, PROJECTION_INPUTS, project
from service.featuremaps.norms import active_filters, feature_map_norms, threshold
from service.runtime.cancellation import checkpoint
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel


class UnknownLayer(NotFoundError, LookupError):
    """The model has no such layer; the message lists the layers it has."""


class NotApplicable(NotApplicableError, ValueError):
    """The step is not defined for this model, layer or filter; the message says what is."""


def classifies(model: LoadedModel) -> bool:
    """Whether ``model`` answers class probabilities (the autoencoder does not)."""
    return PROBABILITIES in model.layer_shapes


def require_classifier(model: LoadedModel) -> None:
    """NotApplicable unless ``model`` classifies."""
    if not classifies(model):
        raise NotApplicable(f"model {model.name!r} does not classify; use model=classifier or a trained variant")


def is_paper_classifier(model: LoadedModel) -> bool:
    """Whether ``model`` has the paper's classifier shape: class probabilities and both conv kernels."""
    return classifies(model) and {"conv1", "conv2"} <= set(model.kernels)


def layer_shape(model: LoadedModel, layer: str) -> list[int]:
    """Output shape of ``layer`` (without batch); UnknownLayer listing the model's layers."""
    shapes = model.layer_shapes
    if layer not in shapes:
        raise UnknownLayer(f"model {model.name!r} has no layer {layer!r}; layers: {', '.join(shapes)}")
    return shapes[layer]


def spatial_layers(model: LoadedModel) -> list[str]:
    """The layers with feature maps (H, W, C), in graph order."""
    return [name for name, shape in model.layer_shapes.items() if len(shape) == 3]


def spatial_layer(model: LoadedModel, layer: str) -> list[int]:
    """Shape (H, W, C) of a layer with feature maps; NotApplicable for dense layers, naming the spatial ones."""
    shape = layer_shape(model, layer)
    if len(shape) != 3:
        raise NotApplicable(f"layer {layer!r} has no feature maps; spatial layers: {', '.join(spatial_layers(model))}")
    return shape


def channels_last(model: LoadedModel | ImportedLoadedModel, maps: np.ndarray) -> np.ndarray:
    """Feature maps of ``model`` with the channels on the last axis, (..., H, W, C): the shipped models' are
    already; an imported model's are ONNX's (C, H, W) (its Conv, pooling and normalisation ops are channels-first,
    and the converters keep the ops between them so)."""
    return np.moveaxis(maps, -3, -1) if isinstance(model, ImportedLoadedModel) else maps


def check_filter(model: LoadedModel | ImportedLoadedModel, layer: str, index: int) -> None:
    """NotApplicable when ``index`` is not a filter of ``layer``, saying the valid range."""
    shape = layer_shape(model, layer)
    count = shape[0] if isinstance(model, ImportedLoadedModel) else shape[-1]
    if not 0 <= index < count:
        raise NotApplicable(f"filter {index} is out of range: layer {layer!r} has filters 0-{count - 1}")


def require_projectable(model: LoadedModel, layer: str) -> None:
    """UnknownLayer or NotApplicable unless ``layer`` of ``model`` can be projected to pixels."""
    layer_shape(model, layer)
    if layer not in PROJECTABLE_LAYERS or not is_paper_classifier(model):
        raise NotApplicable(
            f"deconvolution is defined for the classifier's {', '.join(PROJECTABLE_LAYERS)}; "
            "use a classifier (model=classifier or a variant) with one of those layers"
        )


@dataclass(frozen=True)
class LayerActivity:
    """One layer for one image: every filter's feature-map norm, the threshold and the filters above it."""

    norms: np.ndarray
    threshold: float
    active: list[int]


def layer_activity(maps: np.ndarray, norm: str = "l2", rule: str | float = "mean") -> LayerActivity:
    """The activity of one image's feature maps (H, W, C) under ``norm`` and a threshold ``rule`` (a rule name or a
    fixed number)."""
    norms = feature_map_norms(maps, norm)
    cut = float(threshold(norms, rule))
    return LayerActivity(norms, cut, active_filters(norms, cut))


def projections(model: LoadedModel, images: np.ndarray, layer: str, filters: list[int] | None = None) -> np.ndarray:
    """Each image's projections of ``filters`` (all when None) of ``layer`` to pixel space: (N, F, 28, 28).

    ``images`` are float32 (N, 28, 28) in [0, 1]; one onnxruntime run gives every activation the projection needs.
    """
    require_projectable(model, layer)
    outputs = model.run(images, PROJECTION_INPUTS[layer])
    w1, w2 = model.kernels["conv1"], model.kernels["conv2"]
    projected = []
    for i in range(len(images)):
        checkpoint()
        projected.append(project(layer, {name: maps[i] for name, maps in outputs.items()}, w1, w2, filters))
    return np.stack(projected)


def projection_of_digit(
    model: LoadedModel, digit: np.ndarray, layer: str, filters: list[int] | None = None
) -> np.ndarray:
    """One digit's projections of ``filters`` (all when None) of ``layer``: (F, 28, 28)."""
    return projections(model, digit.reshape(1, 28, 28), layer, filters)[0]


def filter_projections(model: LoadedModel, images: np.ndarray, layer: str, filter: int) -> np.ndarray:
    """Each uint8 image's projection of one filter, e.g. a filter's top-9 images: (N, 28, 28)."""
    return projections(model, images.astype(np.float32) / 255.0, layer, [filter])[:, 0]
