"""Guided backpropagation (Springenberg et al. 2015): the gradient with only positive signals passed at ReLUs."""

from __future__ import annotations

import numpy as np

from service.attribution.any_model import served_saliency
from service.attribution.backward import input_gradients
from service.attribution.inputs import RunFn, batch
from service.attribution.method import AnyModel, Method, NeedsActivation
from service.graphs.classifier_weights import ClassifierWeights


def guided_backprop(run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Guided backprop map (N,28,28) of each image's target logit (Captum's GuidedBackprop).

    Raises backward.GuidedBackpropNeedsRelu for a network whose hidden layers are not ReLUs.
    """
    x, t = batch(images, targets, predicted=True)
    return input_gradients(weights, x, t, guided=True)


METHOD = Method(
    "guided-backprop",
    guided_backprop,
    text="(ReLU networks only)",
    title="guided backprop",
    finds_targets=True,
    requires=NeedsActivation("relu", "ReLU"),
    any_model=AnyModel(served_saliency, rules="guided"),
)
