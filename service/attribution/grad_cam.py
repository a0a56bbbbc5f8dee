"""Grad-CAM (Selvaraju et al. 2017) at one of the spatial layers, at that layer's resolution.

α_k is the spatial mean of ∂logit_target/∂A^k over the layer's output A (after the activation, as Captum's
LayerGradCam sees the output of the module it is given), and the map is ReLU(Σ_k α_k A^k): (N,26,26) for conv1,
(N,24,24) for conv2, (N,12,12) for pool. Upsampling to 28x28 is left to the caller (presentation, not math).
"""

from __future__ import annotations

import numpy as np

from service.attribution.any_model import served_grad_cam
from service.attribution.backward import layer_gradients
from service.attribution.inputs import Choice, RunFn, batch
from service.attribution.method import AnyModel, Method, resized_to_input
from service.graphs.classifier_weights import ClassifierWeights

LAYER = Choice(default="conv2", options=("conv1", "conv2", "pool"))


def grad_cam(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str = LAYER.default
) -> np.ndarray:
    """ReLU(Σ_k α_k A^k) of ``layer`` for each image, (N,H,W) of the layer (Captum's LayerGradCam, ReLU on)."""
    LAYER.check("layer", layer)
    x, t = batch(images, targets, predicted=True)
    maps, grads = layer_gradients(weights, x, t, layer)
    alphas = grads.mean(axis=(1, 2))
    return np.maximum(np.einsum("nhwc,nc->nhw", maps, alphas), 0)


METHOD = Method(
    "grad-cam",
    grad_cam,
    title="Grad-CAM",
    parameters={"layer": LAYER},
    returns="(N,H,W) float32 of the layer",
    signed=False,  # ReLU(...) >= 0
    layers=LAYER.options,
    finds_targets=True,
    maps=resized_to_input,
    any_model=AnyModel(served_grad_cam, layer=True),
)
