"""Attribution maps of the classifier's decisions: onnxruntime for the network, numpy for the methods' own sums.

One method per module (as Captum's attr/_core), all sharing backward.py's exact backward pass (an ONNX graph built
from the classifier's weights, backward_graph.py) and weights.py's reading of the ONNX graph. METHODS is the
registry the API serves: each method's entry point with the uniform signature
``compute(run, weights, images, targets, **parameters)`` (``run`` the served model, which the gradient methods do
not need: the backward graph computes its own forward pass) and its parameters' defaults and ranges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.attribution import grad_cam, integrated_gradients, occlusion, smoothgrad
from service.attribution.backward import GuidedBackpropNeedsRelu
from service.attribution.gradient_x_input import gradient_x_input
from service.attribution.guided_backprop import guided_backprop
from service.attribution.inputs import Choice, Range
from service.attribution.saliency import saliency
from service.graphs.classifier_weights import ClassifierWeights, classifier_weights

__all__ = ["METHODS", "ClassifierWeights", "GuidedBackpropNeedsRelu", "Method", "classifier_weights"]


@dataclass(frozen=True)
class Method:
    """One attribution method: its entry point, its parameters and what it returns."""

    name: str
    compute: Callable[..., Any]
    parameters: dict[str, Range | Choice]
    returns: str
    # takes PREDICTED targets: its own runs find each image's predicted class (and report their Decisions)
    finds_targets: bool = False


PIXELS = "(N,28,28) float32"
METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("saliency", saliency, {}, PIXELS, finds_targets=True),
        Method("gradient-x-input", gradient_x_input, {}, PIXELS, finds_targets=True),
        Method("guided-backprop", guided_backprop, {}, PIXELS, finds_targets=True),
        Method(
            "integrated-gradients",
            integrated_gradients.integrated_gradients,
            {"steps": integrated_gradients.STEPS},
            PIXELS,
        ),
        Method(
            "smoothgrad",
            smoothgrad.smoothgrad,
            {"samples": smoothgrad.SAMPLES, "noise": smoothgrad.NOISE, "seed": smoothgrad.SEED},
            PIXELS,
        ),
        Method(
            "grad-cam", grad_cam.grad_cam, {"layer": grad_cam.LAYER}, "(N,H,W) float32 of the layer", finds_targets=True
        ),
        Method(
            "occlusion",
            occlusion.occlusion,
            {"patch": occlusion.PATCH, "stride": occlusion.STRIDE, "fill": occlusion.FILL},
            "OcclusionMaps",
            finds_targets=True,
        ),
    )
}
