"""What the class activation map (CAM) methods share: the layer they look at, its activations (and the target
logit's gradient there) in onnxruntime, the forward runs of the classifier and of its head from a layer on, and
the bilinear upsampling of a layer's maps to the input.

Every CAM is ReLU(Σ_k w_k A^k) or ReLU(Σ_k W^k ⊙ A^k) over the channels k of the layer's output A (after the
activation, as pytorch-grad-cam hooks the output of the module it is given), at the layer's own resolution: each
method's module says how it weighs the channels. The raw map is not min-max scaled nor resized (pytorch-grad-cam's
``scale_cam_image`` does both): the JSON and .npy answers keep the method's own values; the per-pixel map places
the layer's map over the input as Grad-CAM's does (``placement.to_input_size``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
import onnx.utils

from service.attribution.any_model import served_gradient_cam
from service.attribution.backward import layer_gradients
from service.attribution.grad_cam import LAYER
from service.attribution.inputs import RunFn, batch
from service.attribution.method import AnyModel, Method, resized_to_input
from service.graphs.backward_graph import graphs_of
from service.graphs.classifier_graph import forward_model
from service.graphs.classifier_weights import ClassifierWeights

__all__ = ["LAYER", "ablated_logits", "bilinear", "forward", "gradient_cam", "gradient_method", "channel_runs"]

# The paper's classifier's channels per layer: the forward runs one image costs in Score-CAM and Ablation-CAM.
CHANNELS = {"conv1": 32, "conv2": 64, "pool": 64}
RUN_ROWS = 256  # images (or activations) per onnxruntime run of the forward and head models

Combine = Callable[[np.ndarray, np.ndarray], np.ndarray]


def gradient_cam(
    weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str, combine: Combine
) -> np.ndarray:
    """ReLU(combine(A, ∂logit_target/∂A)) (N,H,W) for ``layer``, A and its gradient NCHW (PREDICTED targets: the
    backward graph's own choice, reported to the bound Decisions)."""
    LAYER.check("layer", layer)
    x, t = batch(images, targets, predicted=True)
    activations, grads = layer_gradients(weights, x, t, layer)
    return np.maximum(combine(activations.transpose(0, 3, 1, 2), grads.transpose(0, 3, 1, 2)), 0)


def gradient_method(name: str, title: str, text: str, combine: Combine) -> Method:
    """The Method of a CAM made of one backward pass per image: ``combine`` (A, gradient) NCHW -> (N,H,W); an
    imported model's maps come from its backward runner at any spatial layer."""

    def compute(
        run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str = LAYER.default
    ) -> np.ndarray:
        return gradient_cam(weights, images, targets, layer, combine)

    compute.__doc__ = f"{title} maps of ``layer`` (N,H,W) for each image's target logit."
    return Method(
        name,
        compute,
        title=title,
        text=text,
        parameters={"layer": LAYER},
        returns="(N,H,W) float32 of the layer",
        signed=False,
        layers=LAYER.options,
        finds_targets=True,
        maps=resized_to_input,
        any_model=AnyModel(served_gradient_cam(combine), layer=True),
    )


def forward(weights: ClassifierWeights, images: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
    """``outputs`` of the classifier's forward graph (layers NCHW, ``logits``, ``probabilities``) for images
    (M,28,28), RUN_ROWS at a time, under the bound RunPolicy."""
    graphs = graphs_of(weights)
    parts = [
        graphs.run("cam_forward", forward_model, {"input": images[i : i + RUN_ROWS]}, outputs)
        for i in range(0, len(images), RUN_ROWS)
    ]
    return [np.concatenate(column) for column in zip(*parts, strict=True)]


def head_from(layer: str) -> Callable[[ClassifierWeights], onnx.ModelProto]:
    """The builder of the classifier's graph from ``layer``'s output (its input, NCHW) to the logits: the forward
    graph cut with ``onnx.utils.Extractor``, so the layers after ``layer`` are the forward graph's own ops."""

    def build(weights: ClassifierWeights) -> onnx.ModelProto:
        full = onnx.shape_inference.infer_shapes(forward_model(weights))
        return onnx.utils.Extractor(full).extract_model([layer], ["logits"])

    return build


def ablated_logits(weights: ClassifierWeights, layer: str, activations: np.ndarray) -> np.ndarray:
    """The logits (M,10) of ``layer``'s outputs ``activations`` (M,C,H,W) through the rest of the classifier."""
    graphs = graphs_of(weights)
    return np.concatenate(
        [
            graphs.run(f"cam_head_{layer}", head_from(layer), {layer: activations[i : i + RUN_ROWS]}, ["logits"])[0]
            for i in range(0, len(activations), RUN_ROWS)
        ]
    )


def bilinear(maps: np.ndarray, height: int, width: int, corners: bool = False) -> np.ndarray:
    """Maps (..., h, w) resized to (..., height, width) bilinearly, edges clamped: with half-pixel centres
    (PyTorch's ``Upsample(mode="bilinear", align_corners=False)``) or, with ``corners``, the corner pixels' centres
    on each other (``align_corners=True``, PyTorch's ``UpsamplingBilinear2d``, which pytorch-grad-cam's Score-CAM
    uses)."""

    def axis(out: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if corners:
            source = np.arange(out) * ((size - 1) / (out - 1) if out > 1 else 0.0)
        else:
            source = np.maximum((np.arange(out) + 0.5) * (size / out) - 0.5, 0)
        low = np.minimum(np.floor(source).astype(np.intp), size - 1)
        high = np.minimum(low + 1, size - 1)
        return low, high, (source - low).astype(np.float32)

    r0, r1, fr = axis(height, maps.shape[-2])
    c0, c1, fc = axis(width, maps.shape[-1])
    rows = maps[..., r0, :] * (1 - fr)[:, None] + maps[..., r1, :] * fr[:, None]
    return rows[..., c0] * (1 - fc) + rows[..., c1] * fc


def channel_runs(parameters: Mapping[str, Any]) -> int:
    """Runs one image costs in Score-CAM and Ablation-CAM: one per channel of the layer, and the image itself."""
    return runs_for_channels(CHANNELS[parameters["layer"]])


def runs_for_channels(channels: int) -> int:
    """Runs one image costs in Score-CAM and Ablation-CAM at a layer of ``channels`` channels."""
    return channels + 1
