"""Attribution maps of the classifier's decisions: onnxruntime for the network, numpy for the methods' own sums.

One method per module (as Captum's attr/_core), all sharing backward.py's exact backward pass (an ONNX graph: the
classifier's forward graph built from its weights, through the gradient builder) and weights.py's reading of the
ONNX graph. Each module declares its ``METHOD``: the entry point with the uniform signature
``compute(run, weights, images, targets, **parameters)`` and the method's traits (``method.Method``). METHODS is
the registry the API serves, in the order it lists them: a new method is its module and one line here.
"""

from __future__ import annotations

from service.attribution import (
    grad_cam,
    gradient_x_input,
    guided_backprop,
    integrated_gradients,
    occlusion,
    saliency,
    smoothgrad,
)
from service.attribution.backward import GuidedBackpropNeedsRelu
from service.attribution.inputs import Choice, Range
from service.attribution.method import Limits, Method
from service.graphs.classifier_weights import ClassifierWeights, classifier_weights

__all__ = [
    "METHODS",
    "ClassifierWeights",
    "GuidedBackpropNeedsRelu",
    "Limits",
    "Method",
    "classifier_weights",
    "offered_parameters",
]

METHODS: dict[str, Method] = {}


def register(method: Method) -> None:
    """Serve ``method`` under its name."""
    METHODS[method.name] = method


register(saliency.METHOD)
register(gradient_x_input.METHOD)
register(guided_backprop.METHOD)
register(integrated_gradients.METHOD)
register(smoothgrad.METHOD)
register(grad_cam.METHOD)
register(occlusion.METHOD)


def offered_parameters() -> dict[str, tuple[str, Range | Choice]]:
    """The parameters a request may set, in the registry's order, each with the first method that reads it."""
    offered: dict[str, tuple[str, Range | Choice]] = {}
    for method in METHODS.values():
        for name, spec in method.parameters.items():
            if spec.offered:
                offered.setdefault(name, (method.name, spec))
    return offered
