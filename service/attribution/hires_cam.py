"""HiResCAM (Draelos & Carin 2020): the layer's output times the target logit's gradient, element by element,
summed over the channels: ReLU(Σ_k g^k ⊙ A^k) at the layer's resolution.

Unlike Grad-CAM it does not average the gradient over the positions first, so the map shows where the logit's
first-order change comes from (for a layer followed only by linear ops, exactly). As pytorch-grad-cam's HiResCAM
before ``scale_cam_image`` (convlens does not min-max scale or resize the raw map).
"""

from __future__ import annotations

import numpy as np

from service.attribution.cam import gradient_method


def elementwise(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Σ_k g^k ⊙ A^k (N,H,W) of NCHW activations and gradients."""
    return np.einsum("nchw,nchw->nhw", activations, grads)


METHOD = gradient_method("hires-cam", "HiResCAM", "(Draelos & Carin 2020)", elementwise)
