"""Attribution maps of the classifier's decisions: onnxruntime for the network, numpy for the methods' own sums.

One method per module (as Captum's attr/_core), all sharing backward.py's exact backward pass (an ONNX graph: the
classifier's forward graph built from its weights, through the gradient builder) and weights.py's reading of the
ONNX graph. Each module declares its ``METHOD``: the entry point with the uniform signature
``compute(run, weights, images, targets, **parameters)`` and the method's traits (``method.Method``). METHODS is
the registry the API serves, in the order it lists them: a new method is its module and one line here.
"""

from __future__ import annotations

from service.attribution import (
    ablation_cam,
    eigen_cam,
    feature_ablation,
    grad_cam,
    grad_cam_plus_plus,
    gradient_x_input,
    guided_backprop,
    hires_cam,
    integrated_gradients,
    kernel_shap,
    layer_cam,
    occlusion,
    rise,
    saliency,
    score_cam,
    smoothgrad,
    xgrad_cam,
)
from service.attribution.backward import GuidedBackpropNeedsRelu
from service.attribution.inputs import Parameter
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
register(grad_cam_plus_plus.METHOD)
register(hires_cam.METHOD)
register(xgrad_cam.METHOD)
register(layer_cam.METHOD)
register(score_cam.METHOD)
register(eigen_cam.METHOD)
register(ablation_cam.METHOD)
register(occlusion.METHOD)
register(rise.METHOD)
register(kernel_shap.METHOD)
register(feature_ablation.METHOD)


def offered_parameters() -> dict[str, tuple[str, Parameter]]:
    """The parameters a request may set, in the registry's order, each with the first method that reads it."""
    offered: dict[str, tuple[str, Parameter]] = {}
    for method in METHODS.values():
        for name, spec in method.parameters.items():
            if spec.offered:
                offered.setdefault(name, (method.name, spec))
    return offered
