"""Gradient × input (Shrikumar et al. 2016): the saliency weighted by the pixel, zero on the black background."""

from __future__ import annotations

import numpy as np

from service.attribution.any_model import served_gradient_x_input
from service.attribution.backward import input_gradients
from service.attribution.inputs import RunFn, batch
from service.attribution.method import AnyModel, Method
from service.graphs.classifier_weights import ClassifierWeights


def gradient_x_input(run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """x · ∂logit_target/∂x for each image (N,28,28) (Captum's InputXGradient)."""
    x, t = batch(images, targets, predicted=True)
    return x * input_gradients(weights, x, t)


METHOD = Method(
    "gradient-x-input",
    gradient_x_input,
    title="gradient × input",
    finds_targets=True,
    any_model=AnyModel(served_gradient_x_input),
)
