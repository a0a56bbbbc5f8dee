"""Grad-CAM++ (Chattopadhay et al. 2018): the channels weighed by their positive gradients, each position's
share α from the closed form for an exponential score (the paper's Eq. 19), taken over the target's logit.

w_k = Σ_ij α_ij^k ReLU(g_ij^k), α_ij^k = g² / (2 g² + Σ_ab A_ab^k · g³ + ε) (0 where g = 0), ε = 1e-6, g the
target logit's gradient at the layer's output A; the map is ReLU(Σ_k w_k A^k) at the layer's resolution, as
pytorch-grad-cam's GradCAMPlusPlus computes it before ``scale_cam_image`` (convlens does not min-max scale or
resize the raw map).
"""

from __future__ import annotations

import numpy as np

from service.attribution.cam import gradient_method

EPSILON = 1e-6


def plus_plus(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Σ_k w_k A^k (N,H,W) of NCHW activations and gradients, w_k Grad-CAM++'s."""
    squared = grads**2
    sums = activations.sum(axis=(2, 3), keepdims=True)
    alpha = np.where(grads != 0, squared / (2 * squared + sums * squared * grads + EPSILON), 0)
    channel_weights = (np.maximum(grads, 0) * alpha).sum(axis=(2, 3))
    return np.einsum("nchw,nc->nhw", activations, channel_weights)


METHOD = gradient_method(
    "grad-cam-plus-plus",
    "Grad-CAM++",
    "(Chattopadhay et al. 2018)",
    plus_plus,
)
