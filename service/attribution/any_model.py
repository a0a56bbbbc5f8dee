"""The gradient attribution methods for any model the gradient builder covers, composed from one
``gradient_graph`` session: saliency, gradient × input, integrated gradients, SmoothGrad, Grad-CAM (on any
spatial NCHW tensor of the graph) and the CAMs made of a layer's activations and gradients, and occlusion from
forward runs of the model alone; ``LayerRuns`` is what the forward-only CAMs ask of a model about one layer.

Each method takes a ``GradientRunner`` (the builder's model in an onnxruntime session), images in the model's own
layout and range, and seeds: one row per image over the seeded tensor (a one-hot over the logits differentiates
that class's logit; ``one_hot`` makes them). Integrated gradients uses the shipped classifier's rule
(service.attribution.inputs.trapezoid_rule: Captum's trapezoid points with weights summing to 1); SmoothGrad takes
its noise fields from the caller, so that a map is reproducible and does not depend on the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime as ort

from service.attribution.inputs import trapezoid_rule
from service.graphs.gradient_builder import GradientGraph

CHUNK = 64  # images per onnxruntime run when a method runs many copies of each image


class GradientRunner:
    """A GradientGraph's model in an onnxruntime session, fed images (its input ``input_name``) and seeds."""

    def __init__(
        self, built: GradientGraph, input_name: str, options: ort.SessionOptions | None = None, chunk: int = CHUNK
    ) -> None:
        self.built, self.input_name, self.chunk = built, input_name, chunk
        self.session = ort.InferenceSession(
            built.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )

    def run(self, images: np.ndarray, seeds: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The outputs ``names`` (gradient outputs or forward tensors) for ``images`` and their ``seeds``, in runs of
        at most ``chunk`` images, concatenated along the batch."""
        parts = [
            self.session.run(
                names, {self.input_name: images[i : i + self.chunk], self.built.seed_input: seeds[i : i + self.chunk]}
            )
            for i in range(0, len(images), self.chunk)
        ]
        return [np.concatenate(column) for column in zip(*parts, strict=True)]

    def gradient(self, images: np.ndarray, seeds: np.ndarray, wrt: str | None = None) -> np.ndarray:
        """The gradient of Σ seed·seeded tensor with respect to ``wrt`` (default: the input) for each image."""
        return self.run(images, seeds, [self.built.gradients[wrt or self.input_name]])[0]


def one_hot(targets: np.ndarray, classes: int, dtype: np.dtype | type = np.float32) -> np.ndarray:
    """(N, classes) seeds: 1 at each image's target class."""
    return np.eye(classes, dtype=dtype)[np.asarray(targets)]


def saliency(runner: GradientRunner, images: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The seeded output's gradient with respect to the input, signed (Captum's Saliency with abs=False)."""
    return runner.gradient(images, seeds)


def gradient_x_input(runner: GradientRunner, images: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The input times its gradient (Captum's InputXGradient)."""
    return images * runner.gradient(images, seeds)


def _summed_over_copies(
    runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, copies: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Σ_k weights[k] · gradient at copies[k] (copies: (K, N, ...) inputs), all copies of all images in runs of
    ``runner.chunk``."""
    k, n = copies.shape[:2]
    flat = copies.reshape(k * n, *copies.shape[2:])
    grads = runner.gradient(flat, np.tile(seeds, (k, *([1] * (seeds.ndim - 1)))))
    return np.tensordot(weights, grads.reshape(copies.shape), axes=1)


def integrated_gradients(
    runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, steps: int, baseline: float | np.ndarray = 0.0
) -> np.ndarray:
    """(x − baseline) · Σ_k w_k ∇(baseline + α_k (x − baseline)), the trapezoid rule's α_k and w_k (weights
    summing to 1, so the maps sum to the output's change from the baseline)."""
    alphas, rule = trapezoid_rule(steps)
    delta = images - baseline
    path = baseline + alphas.reshape(-1, *([1] * images.ndim)).astype(images.dtype) * delta
    return (delta * _summed_over_copies(runner, images, seeds, path, rule)).astype(images.dtype)


def smoothgrad(runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The mean gradient over the noisy copies x + noise[k]; ``noise`` is (samples, *one image's shape), every
    image of the batch sharing the fields, or (samples, N, ...) with a field per image."""
    noisy = images[None] + (noise if noise.ndim == images.ndim + 1 else noise[:, None])
    scale = np.full(len(noise), 1 / len(noise))
    return _summed_over_copies(runner, images, seeds, noisy, scale).astype(images.dtype)


def grad_cam(runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, layer: str) -> np.ndarray:
    """ReLU(Σ_c α_c A_c) of the NCHW tensor ``layer`` (N, H, W), α_c the spatial mean of the seeded output's
    gradient with respect to channel c (Captum's LayerGradCam); the runner's graph must return ``layer`` as an
    output and its gradient."""
    activations, grads = runner.run(images, seeds, [layer, runner.built.gradients[layer]])
    alphas = grads.mean(axis=tuple(range(2, grads.ndim)))
    return np.maximum(np.einsum("nc...,nc->n...", activations, alphas), 0)


def occlusion(
    scores: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    targets: np.ndarray,
    window: tuple[int, int],
    stride: tuple[int, int],
    baseline: float = 0.0,
    chunk: int = CHUNK,
) -> np.ndarray:
    """Occlusion of NCHW images (N, H, W): each window (all channels) set to ``baseline`` in turn, the target's
    score drop spread over the window's pixels and averaged over the windows covering each pixel (0 where none
    does), as Captum's Occlusion with the same window, stride and baseline. ``scores`` runs the forward model
    (images to (N, classes)); forward runs only, so any model the service can run gets it."""
    n, _, height, width = images.shape
    rows = np.arange(0, height - window[0] + 1, stride[0])
    cols = np.arange(0, width - window[1] + 1, stride[1])
    picked = np.arange(n), np.asarray(targets)
    original = scores(images)[picked]
    total = np.zeros((n, height, width), np.float64)
    count = np.zeros((height, width), np.float64)
    positions = [(r, c) for r in rows for c in cols]
    for start in range(0, len(positions), max(1, chunk // n)):
        batch = positions[start : start + max(1, chunk // n)]
        occluded = np.repeat(images[None], len(batch), axis=0)
        for i, (r, c) in enumerate(batch):
            occluded[i, :, :, r : r + window[0], c : c + window[1]] = baseline
        drops = original - scores(occluded.reshape(-1, *images.shape[1:])).reshape(len(batch), n, -1)[:, *picked]
        for (r, c), drop in zip(batch, drops, strict=True):
            total[:, r : r + window[0], c : c + window[1]] += drop[:, None, None]
            count[r : r + window[0], c : c + window[1]] += 1
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(images.dtype)


@dataclass(frozen=True)
class InputRange:
    """Where a model's input puts the [0, 1] pixels: ``black`` the input value of a black pixel and ``unit`` the
    input distance of one whole pixel range ([0, 1]), each broadcastable to one image in the model's layout (a
    model normalising by ``(x - mean) / std`` has black ``-mean / std`` and unit ``1 / std`` per channel)."""

    black: np.ndarray
    unit: np.ndarray


# The served forms, one signature for all: ``(runner, images, seeds, inputs, **parameters)``, the method's own
# parameters as the shipped method defines them, measured in pixel units and placed in the model's input by
# ``inputs``.


def served_saliency(runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, inputs: InputRange) -> np.ndarray:
    """The input gradient (saliency; guided backpropagation on a ``guided`` runner)."""
    return saliency(runner, images, seeds)


def served_gradient_x_input(
    runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, inputs: InputRange
) -> np.ndarray:
    """The input times its gradient."""
    return gradient_x_input(runner, images, seeds)


def served_integrated_gradients(
    runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, inputs: InputRange, steps: int
) -> np.ndarray:
    """Integrated gradients from the black image (the model's normalised black), as the shipped method."""
    return integrated_gradients(runner, images, seeds, steps, inputs.black.astype(images.dtype))


def noise_fields(shape: tuple[int, ...], samples: int, noise: float, seed: int) -> np.ndarray:
    """(samples, *shape) Gaussian fields of standard deviation ``noise`` in pixel units, drawn from ``seed`` as the
    shipped method draws them (a (1, 28, 28) shape gives the shipped fields)."""
    return np.random.default_rng(seed).normal(0.0, abs(noise), (samples, *shape)).astype(np.float32)


def served_smoothgrad(
    runner: GradientRunner,
    images: np.ndarray,
    seeds: np.ndarray,
    inputs: InputRange,
    samples: int,
    noise: float,
    seed: int,
) -> np.ndarray:
    """SmoothGrad with the shipped method's noise in pixel units, scaled into the model's input by ``inputs.unit``
    (σ / std per channel): the same noise relative to the input's range."""
    fields = noise_fields(images.shape[1:], samples, noise, seed) * inputs.unit.astype(np.float32)
    return smoothgrad(runner, images, seeds, fields)


def served_grad_cam(
    runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, inputs: InputRange, layer: str
) -> np.ndarray:
    """Grad-CAM of the NCHW tensor ``layer`` (ONNX's convolutions are NCHW whatever the input's layout)."""
    return grad_cam(runner, images, seeds, layer)


def served_gradient_cam(
    combine: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Callable[..., np.ndarray]:
    """The served form of a CAM made of one backward run: ReLU(combine(A, ∂seeded/∂A)) (N, H, W) of the NCHW
    tensor ``layer``, read with its gradient from the runner's one run (as ``grad_cam``)."""

    def compute(
        runner: GradientRunner, images: np.ndarray, seeds: np.ndarray, inputs: InputRange, layer: str
    ) -> np.ndarray:
        activations, grads = runner.run(images, seeds, [layer, runner.built.gradients[layer]])
        return np.maximum(combine(activations, grads), 0)

    return compute


class LayerRuns(Protocol):
    """A model's forward runs about one of its spatial layers, as the forward-only CAMs need them; images are
    channels-first (M, C, H, W) in the model's input range, scores the tensor the gradients would be taken of (its
    logits, else its probabilities)."""

    def activations(self, images: np.ndarray) -> np.ndarray:
        """The layer's output (M, K, h, w) of the images."""
        ...

    def scores(self, images: np.ndarray) -> np.ndarray:
        """The scores (M, classes) of the images."""
        ...

    def head(self, activations: np.ndarray) -> np.ndarray:
        """The scores (M, classes) of layer outputs (M, K, h, w) through the graph from the layer on."""
        ...
