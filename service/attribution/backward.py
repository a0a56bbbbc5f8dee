"""The exact backward pass of the classifier: gradients of one class's pre-softmax logit, batched over images.

The forward activations come from onnxruntime (the graph's own outputs), the backward pass is plain numpy with
the graph's weights: the output layer's column of the target, the activation derivatives read off the
activation outputs, switch routing through the max pooling (deconv.max_unpool: the first maximum of each window
in onnxruntime's values) and transposed convolutions (deconv.conv_transpose). The logit, not the softmax
probability, is differentiated, as Simonyan et al. (2014) and Captum's usual setup do: the probability's gradient
mixes in every other class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.attribution.inputs import RunFn
from service.attribution.weights import ClassifierWeights
from service.featuremaps.deconv import conv_transpose, max_unpool

FORWARD_LAYERS = ["conv1", "conv2", "pool", "dense1"]
CHUNK = 256  # images per forward/backward pass when a method evaluates many copies of each image


class GuidedBackpropNeedsRelu(ValueError):
    """Guided backpropagation is defined at ReLUs only; the classifier uses another activation."""


@dataclass(frozen=True)
class Gradients:
    """The forward activations and the target logit's gradient w.r.t. the input and each spatial layer's output.

    ``activations`` holds conv1 (N,26,26,32), conv2 (N,24,24,64), pool (N,12,12,64) and dense1 (N,128);
    ``conv1``, ``conv2`` and ``pool`` are the gradients w.r.t. those outputs (after the activation), ``input``
    w.r.t. the image (N,28,28), ``logits`` the target logits (N,).
    """

    activations: dict[str, np.ndarray]
    logits: np.ndarray
    input: np.ndarray
    conv1: np.ndarray
    conv2: np.ndarray
    pool: np.ndarray


def activation_derivative(activation: str, outputs: np.ndarray) -> np.ndarray:
    """The activation's derivative at each unit, written in terms of the unit's output ``outputs``."""
    if activation == "relu":
        return (outputs > 0).astype(outputs.dtype)
    if activation == "tanh":
        return 1 - outputs * outputs
    if activation == "sigmoid":
        return outputs * (1 - outputs)
    if activation == "elu":
        return np.where(outputs > 0, 1, outputs + 1).astype(outputs.dtype)
    raise ValueError(f"unknown activation {activation!r}")


def _check_guided(weights: ClassifierWeights, guided: bool) -> None:
    if guided and weights.activation != "relu":
        raise GuidedBackpropNeedsRelu(
            f"guided backpropagation needs a ReLU network; this classifier uses {weights.activation}"
        )


def _through_activation(grad: np.ndarray, outputs: np.ndarray, activation: str, guided: bool) -> np.ndarray:
    """Gradient w.r.t. an activation's input from the gradient w.r.t. its output.

    Guided (Springenberg et al. 2015, Captum's GuidedBackprop): only positive gradients pass, and only where the
    ReLU's input was positive (output > 0).
    """
    if guided:
        return np.where(outputs > 0, np.maximum(grad, 0), 0).astype(grad.dtype)
    return grad * activation_derivative(activation, outputs)


def gradients(
    activations: dict[str, np.ndarray], weights: ClassifierWeights, targets: np.ndarray, guided: bool = False
) -> Gradients:
    """Backward pass from the target logit of each image, given that batch's forward ``activations``.

    ``guided`` runs guided backpropagation instead (ReLU networks only: GuidedBackpropNeedsRelu otherwise).
    """
    _check_guided(weights, guided)
    act = weights.activation
    conv1, conv2, pool, dense1 = (activations[name] for name in FORWARD_LAYERS)
    n = len(targets)
    logits = np.einsum("nh,hn->n", dense1, weights.output_kernel[:, targets]) + weights.output_bias[targets]
    g_dense1 = _through_activation(weights.output_kernel[:, targets].T, dense1, act, guided)
    g_pool = (g_dense1 @ weights.dense1_kernel.T).reshape(pool.shape)
    g_conv2 = max_unpool(g_pool, conv2)
    g_conv1 = conv_transpose(_through_activation(g_conv2, conv2, act, guided), weights.conv2_kernel)
    g_input = conv_transpose(_through_activation(g_conv1, conv1, act, guided), weights.conv1_kernel)
    return Gradients(
        activations, logits.astype(np.float32), g_input.reshape(n, *g_input.shape[1:3]), g_conv1, g_conv2, g_pool
    )


def backward(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, guided: bool = False
) -> Gradients:
    """Forward ``images`` (N,28,28) through ``run`` and return the gradients of each image's target logit."""
    _check_guided(weights, guided)  # before the forward pass, which would be wasted
    return gradients(run(images, FORWARD_LAYERS), weights, targets, guided)


def summed_input_gradients(
    run: RunFn,
    weights: ClassifierWeights,
    targets: np.ndarray,
    copies: int,
    copy: Callable[[np.ndarray, np.ndarray], np.ndarray],
    scale: np.ndarray,
) -> np.ndarray:
    """Σ_k scale[k] · ∂logit_target/∂x at copy(i, k), for images i = 0..len(targets)-1 and copies k < ``copies``.

    ``copy`` maps index arrays (image i, copy k) to those copies' images; all copies of all images go through
    ``run`` and the backward pass CHUNK at a time, which bounds memory whatever the batch and the copy count.
    Returns float64 (N,28,28).
    """
    image_of = np.repeat(np.arange(len(targets)), copies)
    copy_of = np.tile(np.arange(copies), len(targets))
    total = np.zeros((len(targets), 28, 28), dtype=np.float64)
    for start in range(0, len(image_of), CHUNK):
        i, k = image_of[start : start + CHUNK], copy_of[start : start + CHUNK]
        grads = backward(run, weights, copy(i, k).astype(np.float32), targets[i]).input
        np.add.at(total, i, scale[k, None, None] * grads)
    return total
