"""Deconvnet projections of an imported model's filters back to its input (Zeiler & Fergus 2014, section 2.1).

One filter's activation map at a layer, every other map of the layer zeroed, walked back to the input through the
gradient builder's ``deconvnet`` rules: each ReLU passes the rectified backward signal, each max-pooling unpools
through the forward pass's switches, each convolution applies its transposed filters (and the other ops their
exact vector-Jacobian products). As the shipped classifier's projections (``service.featuremaps.deconv``), the
whole map of the filter is projected, not only its strongest unit. The projection has the model's input shape and
layout; Captum's ``Deconvolution`` attributing Σ A_k ⊙ layer_k on the PyTorch original gives the same map.
"""

from __future__ import annotations

import numpy as np

from service.errors import NotApplicableError
from service.images.preprocessing import pictures_input
from service.runtime.imported import ImportedLoadedModel
from service.studies.imported_gradients import (
    BackwardSession,
    GradientLimits,
    SessionKey,
    backward_session,
    layer_tensor,
)


class NotAFilter(NotApplicableError, ValueError):
    """A filter index outside the layer's filters."""


def layer_activation(model: ImportedLoadedModel, image: np.ndarray, layer: str) -> np.ndarray:
    """One image's activation of ``layer`` (its shape without the batch; filters on the first axis)."""
    layer_tensor(model, layer)
    return model.run(image, [layer])[layer][0]


def project(
    model: ImportedLoadedModel,
    image: np.ndarray,
    layer: str,
    filters: list[int],
    activation: np.ndarray,
    limits: GradientLimits = GradientLimits(),
) -> np.ndarray:
    """The projections of ``filters`` of ``layer`` (whose activation for ``image`` is ``activation``) to the input:
    (F, *the model's input shape), one backward run per filter, through the layer's deconvnet session from the
    model's budgeted cache (within ``limits``)."""
    check_filters(layer, filters, activation.shape[0])
    seeds = np.zeros((len(filters), *activation.shape), np.float32)
    for row, index in enumerate(filters):
        seeds[row, index] = activation[index]
    images = np.repeat(model.as_batch(image), len(filters), axis=0)
    return deconvnet_session(model, layer, limits).gradient(model, images, seeds)


def project_images(
    model: ImportedLoadedModel, images: np.ndarray, layer: str, filter: int, limits: GradientLimits = GradientLimits()
) -> np.ndarray:
    """Each of ``images``' (a batch of the model's inputs) projection of one filter of ``layer``: (N, *the model's
    input shape), e.g. a filter's top images; each image's seed is its own activation map of the filter."""
    batch = model.as_batch(images)
    layer_tensor(model, layer)
    activations = model.run(batch, [layer])[layer]
    check_filters(layer, [filter], activations.shape[1])
    seeds = np.zeros_like(activations, dtype=np.float32)
    seeds[:, filter] = activations[:, filter]
    return deconvnet_session(model, layer, limits).gradient(model, batch, seeds)


def top_image_projections(
    model: ImportedLoadedModel,
    pictures: np.ndarray,
    layer: str,
    filter: int,
    limits: GradientLimits = GradientLimits(),
) -> np.ndarray:
    """The projections of one filter of ``layer`` from each of a filter's top images (uint8 pictures as the model
    saw them, as an analysis keeps them): (N, *the model's input shape)."""
    inputs = pictures_input(pictures, model.manifest.input, model.manifest.preprocessing)
    return project_images(model, inputs, layer, filter, limits)


def as_grey(model: ImportedLoadedModel, projections: np.ndarray) -> np.ndarray:
    """Projections (N, *the model's input shape) as (N, H, W) pictures: their channels summed."""
    return projections.sum(axis=1 if model.manifest.input.layout == "nchw" else -1)


def check_filters(layer: str, filters: list[int], count: int) -> None:
    """NotAFilter naming the range when a filter index is not one of the layer's ``count`` filters."""
    bad = [index for index in filters if not 0 <= index < count]
    if bad:
        raise NotAFilter(f"filter {bad[0]} is out of range: layer {layer!r} has filters 0-{count - 1}")


def deconvnet_session(model: ImportedLoadedModel, layer: str, limits: GradientLimits) -> BackwardSession:
    """The model's backward session from ``layer`` to its input under the deconvnet rules."""
    key = SessionKey(layer_tensor(model, layer), model.manifest.input.name, "deconvnet")
    return backward_session(model, key, limits)
