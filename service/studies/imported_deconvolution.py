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
from service.runtime.imported import ImportedLoadedModel
from service.studies.imported_gradients import backward_session, layer_tensor


class NotAFilter(NotApplicableError, ValueError):
    """A filter index outside the layer's filters."""


def layer_activation(model: ImportedLoadedModel, image: np.ndarray, layer: str) -> np.ndarray:
    """One image's activation of ``layer`` (its shape without the batch; filters on the first axis)."""
    layer_tensor(model, layer)
    return model.run(image, [layer])[layer][0]


def project(
    model: ImportedLoadedModel, image: np.ndarray, layer: str, filters: list[int], activation: np.ndarray
) -> np.ndarray:
    """The projections of ``filters`` of ``layer`` (whose activation for ``image`` is ``activation``) to the input:
    (F, *the model's input shape), one backward run per filter, all in one batch."""
    count = activation.shape[0]
    bad = [index for index in filters if not 0 <= index < count]
    if bad:
        raise NotAFilter(f"filter {bad[0]} is out of range: layer {layer!r} has filters 0-{count - 1}")
    session = backward_session(model, layer_tensor(model, layer), "deconvnet")
    seeds = np.zeros((len(filters), *activation.shape), np.float32)
    for row, index in enumerate(filters):
        seeds[row, index] = activation[index]
    images = np.repeat(model.as_batch(image), len(filters), axis=0)
    return session.gradient(model, images, seeds)
