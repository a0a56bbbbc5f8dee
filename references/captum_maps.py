"""Captum's attribution methods on the PyTorch copy of a classifier, as (N,28,28) or (N,H,W) numpy maps."""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from captum.attr import (
    GuidedBackprop,
    InputXGradient,
    IntegratedGradients,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)

from references.torch_classifier import TorchClassifier, as_input
from service.attribution import ClassifierWeights


@cache
def torch_classifier(weights: ClassifierWeights, softmax: bool) -> TorchClassifier:
    """One PyTorch copy per weights and output (ClassifierWeights hash by identity)."""
    return TorchClassifier(weights, softmax)


def captum_maps(
    method: str, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, **parameters
) -> np.ndarray:
    """Captum's map of ``method`` (this package's registry name) for each image's target, channel axis dropped.

    The network outputs logits, except for occlusion, whose differences are of softmax probabilities.
    """
    model = torch_classifier(weights, method == "occlusion")
    x = as_input(images)
    target = torch.from_numpy(targets.astype(np.int64))
    if method == "saliency":
        result = Saliency(model).attribute(x, target=target, abs=False)
    elif method == "gradient-x-input":
        result = InputXGradient(model).attribute(x, target=target)
    elif method == "guided-backprop":
        result = GuidedBackprop(model).attribute(x, target=target)
    elif method == "integrated-gradients":
        result = IntegratedGradients(model).attribute(
            x, baselines=torch.zeros_like(x), target=target, n_steps=parameters["steps"], method="riemann_trapezoid"
        )
    elif method == "smoothgrad":
        result = NoiseTunnel(Saliency(model)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=parameters["samples"],
            stdevs=parameters["noise"],
            target=target,
            abs=False,
        )
    elif method == "grad-cam":
        layer = {"conv1": model.act1, "conv2": model.act2, "pool": model.pool}[parameters["layer"]]
        result = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    elif method == "occlusion":
        patch, stride = parameters["patch"], parameters["stride"]
        result = Occlusion(model).attribute(
            x,
            sliding_window_shapes=(1, patch, patch),
            strides=(1, stride, stride),
            baselines=parameters["fill"],
            target=target,
            perturbations_per_eval=64,
        )
    else:
        raise ValueError(f"no Captum reference for {method!r}")
    return result.detach().numpy()[:, 0]
