"""LayerCAM (Jiang et al. 2021): every position of every channel weighed by its own positive gradient,
ReLU(Σ_k ReLU(g^k) ⊙ A^k) at the layer's resolution, so that shallow layers give fine-grained maps.

As pytorch-grad-cam's LayerCAM before ``scale_cam_image`` (convlens does not min-max scale or resize the raw map).
"""

from __future__ import annotations

import numpy as np

from service.attribution.cam import gradient_method


def positive_elementwise(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Σ_k ReLU(g^k) ⊙ A^k (N,H,W) of NCHW activations and gradients."""
    return np.einsum("nchw,nchw->nhw", activations, np.maximum(grads, 0))


METHOD = gradient_method("layer-cam", "LayerCAM", "(Jiang et al. 2021)", positive_elementwise)
