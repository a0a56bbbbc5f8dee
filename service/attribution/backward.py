"""The exact backward pass of the classifier: gradients of one class's pre-softmax logit, batched over images.

The forward and the backward pass both run in onnxruntime, as one graph: the classifier's forward graph built from
its own weights, differentiated by the gradient builder (service/graphs/backward_graph.py): the output layer's
column of the target, the activation derivatives read off the activation outputs, switch routing through the max
pooling (the first maximum of each window, onnxruntime's own) and transposed convolutions with the graph's
kernels. The logit, not the softmax probability, is differentiated, as
Simonyan et al. (2014) and Captum's usual setup do: the probability's gradient mixes in every other class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.errors import NotApplicableError
from service.graphs.backward_graph import OUTPUTS, SPATIAL, graphs_of
from service.graphs.classifier_weights import ClassifierWeights

CHUNK = 256  # images per forward/backward pass when a method evaluates many copies of each image


class GuidedBackpropNeedsRelu(NotApplicableError, ValueError):
    """Guided backpropagation is defined at ReLUs only; the classifier uses another activation."""


@dataclass(frozen=True)
class Gradients:
    """The forward activations and the target logit's gradient w.r.t. the input and each spatial layer's output.

    ``activations`` holds conv1 (N,26,26,32), conv2 (N,24,24,64), pool (N,12,12,64) and dense1 (N,128);
    ``conv1``, ``conv2`` and ``pool`` are the gradients w.r.t. those outputs (after the activation), ``input``
    w.r.t. the image (N,28,28), ``logits`` the target logits (N,). The spatial arrays are NHWC views of the
    graph's NCHW outputs.
    """

    activations: dict[str, np.ndarray]
    logits: np.ndarray
    input: np.ndarray
    conv1: np.ndarray
    conv2: np.ndarray
    pool: np.ndarray


def _check_guided(weights: ClassifierWeights, guided: bool) -> None:
    if guided and weights.activation != "relu":
        raise GuidedBackpropNeedsRelu(
            f"guided backpropagation needs a ReLU network; this classifier uses {weights.activation}"
        )


def backward(weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, guided: bool = False) -> Gradients:
    """Forward and backward pass of ``images`` (N,28,28) from each image's target logit.

    ``guided`` runs guided backpropagation instead (Springenberg et al. 2015, Captum's GuidedBackprop: only
    positive gradients pass, and only where the ReLU's input was positive); ReLU networks only:
    GuidedBackpropNeedsRelu otherwise.
    """
    _check_guided(weights, guided)
    result = graphs_of(weights).backward(images, targets, list(OUTPUTS), guided)
    nhwc = {name: result[name].transpose(0, 2, 3, 1) for name in (*SPATIAL, *(f"{layer}_grad" for layer in SPATIAL))}
    return Gradients(
        {**{layer: nhwc[layer] for layer in SPATIAL}, "dense1": result["dense1"]},
        result["logits"],
        result["input_grad"],
        *(nhwc[f"{layer}_grad"] for layer in SPATIAL),
    )


def layer_gradients(
    weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str
) -> tuple[np.ndarray, np.ndarray]:
    """``layer``'s output (of SPATIAL) and ∂logit_target/∂ that output, both NHWC, alone: the other outputs are
    not copied out of onnxruntime."""
    result = graphs_of(weights).backward(images, targets, [layer, f"{layer}_grad"])
    return result[layer].transpose(0, 2, 3, 1), result[f"{layer}_grad"].transpose(0, 2, 3, 1)


def input_gradients(
    weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, guided: bool = False
) -> np.ndarray:
    """∂logit_target/∂x (N,28,28) alone (``guided``: guided backpropagation's, as in ``backward``): the other
    outputs are not copied out of onnxruntime."""
    _check_guided(weights, guided)
    return graphs_of(weights).backward(images, targets, ["input_grad"], guided)["input_grad"]


def summed_input_gradients(
    weights: ClassifierWeights,
    targets: np.ndarray,
    copies: int,
    copy: Callable[[np.ndarray, np.ndarray], np.ndarray],
    scale: np.ndarray,
) -> np.ndarray:
    """Σ_k scale[k] · ∂logit_target/∂x at copy(i, k), for images i = 0..len(targets)-1 and copies k < ``copies``.

    ``copy`` maps index arrays (image i, copy k) to those copies' images; all copies of all images go through
    the backward graph CHUNK at a time, which bounds memory whatever the batch and the copy count.
    Returns float64 (N,28,28).
    """
    image_of = np.repeat(np.arange(len(targets)), copies)
    copy_of = np.tile(np.arange(copies), len(targets))
    total = np.zeros((len(targets), 28, 28), dtype=np.float64)
    for start in range(0, len(image_of), CHUNK):
        i, k = image_of[start : start + CHUNK], copy_of[start : start + CHUNK]
        grads = input_gradients(weights, copy(i, k), targets[i])
        first = np.flatnonzero(np.r_[True, i[1:] != i[:-1]])  # i is sorted: each image's copies are one run
        total[i[first]] += np.add.reduceat(scale[k, None, None] * grads, first, axis=0)
    return total
