"""Ablation-CAM (Desai & Ramaswamy 2020): each channel weighed by the target logit's relative drop when that
channel of the layer is set to zero, with forward runs alone (no gradient).

w_k = (y - y_k) / y, y the target's logit and y_k the logit with channel k of the layer's output zeroed; the map
is ReLU(Σ_k w_k A^k) at the layer's resolution. The ablated outputs run through the classifier's graph from the
layer on: its forward graph cut at the layer with ``onnx.utils.Extractor`` (``cam.head_from``), so one image's C
ablations are one batch of the head's ops, not C whole forward runs (an imported model's head is cut from its
exposed copy the same way, ``service.studies.cut_heads``). As pytorch-grad-cam's AblationCAM before
``scale_cam_image`` (convlens does not min-max scale or resize the raw map); pytorch-grad-cam ablates to
min(A) - 1e7 instead of 0 when the layer's output has no zero (a tanh network), convlens always to 0, the paper's
choice.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from service.attribution.any_model import LayerRuns
from service.attribution.cam import LAYER, ablated_logits, channel_runs, forward, runs_for_channels
from service.attribution.inputs import RunFn, batch
from service.attribution.method import AnyModel, Method, resized_to_input
from service.graphs.classifier_weights import ClassifierWeights
from service.runtime.cancellation import checkpoint


def ablated_map(output: np.ndarray, target: int, head: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Σ_k w_k A^k (h,w) of one image's layer output (K,h,w): the output and its K ablations (channel k zeroed)
    through ``head`` (scores (K+1, classes)), w_k the target's relative drop."""
    channels = output.shape[0]
    ablated = np.repeat(output[None], channels + 1, axis=0)
    ablated[np.arange(1, channels + 1), np.arange(channels)] = 0
    logits = head(ablated)[:, target]
    channel_weights = (logits[0] - logits[1:]) / logits[0]
    return np.einsum("chw,c->hw", output, channel_weights)


def ablation_cam(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str = LAYER.default
) -> np.ndarray:
    """Ablation-CAM maps of ``layer`` (N,H,W) for each image's target class; C + 1 head runs per image."""
    LAYER.check("layer", layer)
    x, t = batch(images, targets)
    (activations,) = forward(weights, x, [layer])
    maps = []
    for target, output in zip(t, activations, strict=True):
        checkpoint()
        maps.append(ablated_map(output, target, lambda ablated: ablated_logits(weights, layer, ablated)))
    return np.maximum(np.stack(maps), 0).astype(np.float32)


def served_ablation_cam(runs: LayerRuns, images: np.ndarray, targets: np.ndarray, layer: str) -> np.ndarray:
    """Ablation-CAM maps (N,h,w) of an imported model's ``layer``, the ablations through its cut head."""
    maps = []
    for target, output in zip(targets, runs.activations(images), strict=True):
        checkpoint()
        maps.append(ablated_map(output, int(target), runs.head))
    return np.maximum(np.stack(maps), 0).astype(np.float32)


METHOD = Method(
    "ablation-cam",
    ablation_cam,
    title="Ablation-CAM",
    text="(Desai & Ramaswamy 2020)",
    parameters={"layer": LAYER},
    returns="(N,H,W) float32 of the layer",
    signed=False,
    needs_gradients=False,
    layers=LAYER.options,
    evaluations=channel_runs,
    maps=resized_to_input,
    any_model=AnyModel(served_ablation_cam, layer=True, forward=True, evaluations=runs_for_channels),
)
