"""pytorch-grad-cam's raw class activation maps on the PyTorch copy of a classifier: each method's own
``get_cam_image`` rectified, as its ``compute_cam_per_layer`` makes it before ``scale_cam_image`` min-max scales
and resizes it."""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import AblationCAM, EigenCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from references.captum_maps import torch_classifier
from service.attribution import ClassifierWeights

CAMS = {
    "grad-cam-plus-plus": GradCAMPlusPlus,
    "hires-cam": HiResCAM,
    "xgrad-cam": XGradCAM,
    "layer-cam": LayerCAM,
    "score-cam": ScoreCAM,
    "eigen-cam": EigenCAM,
    "ablation-cam": AblationCAM,
}


def grad_cam_maps(
    method: str, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str
) -> np.ndarray:
    """pytorch-grad-cam's un-scaled map (N,H,W) of ``method`` (this package's registry name) at ``layer`` (the
    module whose output the ONNX graph names so), for each image's target logit."""
    model = torch_classifier(weights, False)
    module = {"conv1": model.act1, "conv2": model.act2, "pool": model.pool}[layer]
    return raw_cam_maps(method, model, module, images[:, None], targets)


def raw_cam_maps(
    method: str, model: torch.nn.Module, module: torch.nn.Module, images: np.ndarray, targets: np.ndarray
) -> np.ndarray:
    """pytorch-grad-cam's un-scaled map (N,h,w) of ``method`` at ``module``'s output for NCHW ``images`` and each
    image's target (the index into ``model``'s output)."""
    cam = CAMS[method](model=model, target_layers=[module])
    x = torch.from_numpy(np.ascontiguousarray(images))
    chosen = [ClassifierOutputTarget(int(t)) for t in targets]
    outputs = cam.activations_and_grads(x)
    grads = None
    if cam.uses_gradients:
        model.zero_grad()
        sum(target(output) for target, output in zip(chosen, outputs, strict=True)).backward()
        grads = cam.activations_and_grads.gradients[0].numpy()
    activations = cam.activations_and_grads.activations[0].numpy()
    raw = cam.get_cam_image(x, module, chosen, activations, grads, False)
    cam.activations_and_grads.release()
    return np.maximum(raw, 0)
