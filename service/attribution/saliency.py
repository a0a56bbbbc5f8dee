"""Saliency (Simonyan, Vedaldi & Zisserman 2014): the target logit's gradient w.r.t. the image, kept signed."""

from __future__ import annotations

import numpy as np

from service.attribution.any_model import served_saliency
from service.attribution.backward import input_gradients
from service.attribution.inputs import RunFn, batch
from service.attribution.method import AnyModel, Method
from service.graphs.classifier_weights import ClassifierWeights


def saliency(run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """∂logit_target/∂x for each image (N,28,28); signed (Captum's Saliency with abs=False)."""
    x, t = batch(images, targets, predicted=True)
    return input_gradients(weights, x, t)


METHOD = Method("saliency", saliency, finds_targets=True, any_model=AnyModel(served_saliency))
