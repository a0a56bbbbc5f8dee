"""XGrad-CAM (Fu et al. 2020, "Axiom-based Grad-CAM"): each channel weighed by its gradient averaged with the
channel's own activations as weights, the choice that satisfies the paper's sensitivity and conservation axioms.

w_k = Σ_ij g_ij^k A_ij^k / (Σ_ij A_ij^k + ε), ε = 1e-7; the map is ReLU(Σ_k w_k A^k) at the layer's resolution,
as pytorch-grad-cam's XGradCAM before ``scale_cam_image`` (convlens does not min-max scale or resize the raw map).
"""

from __future__ import annotations

import numpy as np

from service.attribution.cam import gradient_method

EPSILON = 1e-7


def axiom_weighted(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Σ_k w_k A^k (N,H,W) of NCHW activations and gradients, w_k XGrad-CAM's."""
    sums = activations.sum(axis=(2, 3), keepdims=True)
    channel_weights = (grads * activations / (sums + EPSILON)).sum(axis=(2, 3))
    return np.einsum("nchw,nc->nhw", activations, channel_weights)


METHOD = gradient_method("xgrad-cam", "XGrad-CAM", "(Fu et al. 2020)", axiom_weighted)
