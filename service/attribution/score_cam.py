"""Score-CAM (Wang et al. 2020): each channel weighed by how much the target's logit holds when the image is seen
only through that channel's map, with forward runs alone (no gradient).

Each channel A^k of the layer is upsampled bilinearly to 28x28 (the corner pixels' centres on each other, as
pytorch-grad-cam's ``UpsamplingBilinear2d``), min-max scaled to [0, 1] (+1e-8 against a constant channel) and
multiplied with the image; the target's logits s_k over those C masked images become weights by a softmax over
the channels, and the map is ReLU(Σ_k w_k A^k) at the layer's resolution. This is pytorch-grad-cam's ScoreCAM
before its ``scale_cam_image`` (convlens does not min-max scale or resize the raw map); the paper's own code
subtracts the baseline's score, pytorch-grad-cam's and convlens's do not.
"""

from __future__ import annotations

import numpy as np

from service.attribution.cam import LAYER, bilinear, channel_runs, forward
from service.attribution.inputs import RunFn, batch
from service.attribution.method import Method, resized_to_input
from service.graphs.classifier_weights import IMAGE_SIZE, ClassifierWeights
from service.runtime.cancellation import checkpoint

EPSILON = 1e-8


def score_cam(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str = LAYER.default
) -> np.ndarray:
    """Score-CAM maps of ``layer`` (N,H,W) for each image's target class; C + 1 forward runs per image."""
    LAYER.check("layer", layer)
    x, t = batch(images, targets)
    (activations,) = forward(weights, x, [layer])
    maps = []
    for image, target, channels in zip(x, t, activations, strict=True):
        checkpoint()
        upsampled = bilinear(channels, IMAGE_SIZE, IMAGE_SIZE, corners=True)
        low = upsampled.min(axis=(1, 2), keepdims=True)
        high = upsampled.max(axis=(1, 2), keepdims=True)
        masks = (upsampled - low) / (high - low + EPSILON)
        (logits,) = forward(weights, (image[None] * masks).astype(np.float32), ["logits"])
        scores = logits[:, target].astype(np.float64)
        channel_weights = np.exp(scores - scores.max())
        channel_weights /= channel_weights.sum()
        maps.append(np.einsum("chw,c->hw", channels, channel_weights))
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
)
