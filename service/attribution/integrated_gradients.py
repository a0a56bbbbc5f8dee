"""Integrated gradients (Sundararajan, Taly & Yan 2017) from the all-black image, by the trapezoid rule.

The path points are Captum's ``riemann_trapezoid`` ones, α_k = k/(steps-1) for k = 0..steps-1, weighted
1/(steps-1) with the two ends halved: the trapezoid rule, whose weights sum to 1 so that the maps are complete
(Σ map ≈ logit(x) - logit(black)). Captum 0.9 weights the same points 1/steps (its sum is (steps-1)/steps), so
its attributions are exactly ours times (steps-1)/steps. All steps of all images go through onnxruntime and
the backward pass as batches (backward.summed_input_gradients).
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np

from service.attribution.any_model import served_integrated_gradients
from service.attribution.backward import summed_input_gradients
from service.attribution.inputs import Range, RunFn, batch, trapezoid_rule
from service.attribution.method import AnyModel, Method
from service.graphs.classifier_weights import ClassifierWeights

STEPS = Range(default=50, low=2, high=512, text="path steps", limit="max_steps")


def integrated_gradients(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, steps: int = STEPS.default
) -> np.ndarray:
    """x · Σ_k w_k ∂logit_target/∂x (α_k x) for each image (N,28,28), baseline black."""
    STEPS.check("steps", steps)
    x, t = batch(images, targets)
    alphas, rule = trapezoid_rule(steps)
    path_integral = summed_input_gradients(weights, t, steps, lambda i, k: alphas[k, None, None] * x[i], rule)
    return (x * path_integral).astype(np.float32)


METHOD = Method(
    "integrated-gradients",
    integrated_gradients,
    title="integrated gradients",
    parameters={"steps": STEPS},
    evaluations=itemgetter("steps"),
    any_model=AnyModel(served_integrated_gradients),
)
