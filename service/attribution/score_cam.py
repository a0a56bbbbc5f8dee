"""Score-CAM (Wang et al. 2020): each channel weighed by how much the target's logit holds when the image is seen
only through that channel's map, with forward runs alone (no gradient).

Each channel A^k of the layer is upsampled bilinearly to the input's size (the corner pixels' centres on each other, as
pytorch-grad-cam's ``UpsamplingBilinear2d``), min-max scaled to [0, 1] (+1e-8 against a constant channel) and
multiplied with the image; the target's logits s_k over those C masked images become weights by a softmax over
the channels, and the map is ReLU(Σ_k w_k A^k) at the layer's resolution. This is pytorch-grad-cam's ScoreCAM
before its ``scale_cam_image`` (convlens does not min-max scale or resize the raw map); the paper's own code
subtracts the baseline's score, pytorch-grad-cam's and convlens's do not.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from service.attribution.any_model import LayerRuns
from service.attribution.cam import LAYER, bilinear, channel_runs, forward, runs_for_channels
from service.attribution.inputs import RunFn, batch
from service.attribution.method import AnyModel, Method, resized_to_input
from service.graphs.classifier_weights import ClassifierWeights
from service.runtime.cancellation import checkpoint

EPSILON = 1e-8


def masked_map(
    channels: np.ndarray, image: np.ndarray, target: int, scores: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Σ_k w_k A^k (h,w) of one image's layer output ``channels`` (K,h,w): ``image`` ((H,W) or (C,H,W)) seen
    through each channel's upsampled, min-max scaled map, ``scores`` of those K images (K, classes) at ``target``
    softmaxed over the channels into the weights."""
    upsampled = bilinear(channels, image.shape[-2], image.shape[-1], corners=True)
    low = upsampled.min(axis=(1, 2), keepdims=True)
    high = upsampled.max(axis=(1, 2), keepdims=True)
    masks = (upsampled - low) / (high - low + EPSILON)
    masks = masks.reshape(masks.shape[0], *([1] * (image.ndim - 2)), *masks.shape[1:])
    logits = scores((image[None] * masks).astype(np.float32))
    weights = logits[:, target].astype(np.float64)
    weights = np.exp(weights - weights.max())
    weights /= weights.sum()
    return np.einsum("chw,c->hw", channels, weights)


def score_cam(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str = LAYER.default
) -> np.ndarray:
    """Score-CAM maps of ``layer`` (N,H,W) for each image's target class; C + 1 forward runs per image."""
    LAYER.check("layer", layer)
    x, t = batch(images, targets)
    (activations,) = forward(weights, x, [layer])

    def logits(masked: np.ndarray) -> np.ndarray:
        return forward(weights, masked, ["logits"])[0]

    maps = []
    for image, target, channels in zip(x, t, activations, strict=True):
        checkpoint()
        maps.append(masked_map(channels, image, target, logits))
    return np.maximum(np.stack(maps), 0).astype(np.float32)


def served_score_cam(runs: LayerRuns, images: np.ndarray, targets: np.ndarray, layer: str) -> np.ndarray:
    """Score-CAM maps (N,h,w) of an imported model's ``layer``: each image (C,H,W) masked by each channel's map
    and run through the whole model."""
    maps = []
    for image, target, channels in zip(images, targets, runs.activations(images), strict=True):
        checkpoint()
        maps.append(masked_map(channels, image, int(target), runs.scores))
    return np.maximum(np.stack(maps), 0).astype(np.float32)


METHOD = Method(
    "score-cam",
    score_cam,
    title="Score-CAM",
    text="(Wang et al. 2020)",
    parameters={"layer": LAYER},
    returns="(N,H,W) float32 of the layer",
    signed=False,
    needs_gradients=False,
    layers=LAYER.options,
    evaluations=channel_runs,
    maps=resized_to_input,
    any_model=AnyModel(served_score_cam, layer=True, forward=True, evaluations=runs_for_channels),
)
