"""Eigen-CAM (Muhammad & Yeasin 2020): the layer's output projected on its first principal component, with one
forward run and no class: the map shows what the layer holds most strongly, whichever class is asked for.

The layer's output (C,H,W) is read as H·W samples of C features, centred per channel; the map is
ReLU(A_centred · v₁) at the layer's resolution, v₁ the first right singular vector (numpy's SVD, as
pytorch-grad-cam's ``get_2d_projection``; the SVD fixes v₁'s sign, the paper does not). For a tall matrix, the SVD
of its QR factor R, as LAPACK takes it: v₁ is the same as the full SVD's (pytorch-grad-cam's
``full_matrices=True``), without the H·W x H·W left factor that one also computes. As pytorch-grad-cam's
EigenCAM before ``scale_cam_image`` (convlens does not min-max scale or resize the raw map). The target only
decides the answer's reported class and probability.
"""

from __future__ import annotations

import numpy as np

from service.attribution.any_model import LayerRuns
from service.attribution.cam import LAYER, forward
from service.attribution.inputs import RunFn, batch
from service.attribution.method import AnyModel, Method, resized_to_input
from service.graphs.backward_graph import report
from service.graphs.classifier_weights import PREDICTED, ClassifierWeights


def first_component(output: np.ndarray) -> np.ndarray:
    """The (H,W) projection of one layer output (C,H,W) on its first principal component (not rectified)."""
    samples = output.reshape(output.shape[0], -1).T
    samples = samples - samples.mean(axis=0)
    rows, columns = samples.shape
    # LAPACK's gesdd factors a matrix this tall as QR first and takes the SVD of R (its MNTHR): doing that step
    # here gives the same v₁, sign included, without the Q and U it would also form (conv2's 576 x 64: 1.8 -> 0.9 ms)
    factored = np.linalg.qr(samples, mode="r") if rows >= columns * 11 // 6 else samples
    _, _, vt = np.linalg.svd(factored, full_matrices=False)
    return (samples @ vt[0]).reshape(output.shape[1:])


def eigen_cam(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, layer: str = LAYER.default
) -> np.ndarray:
    """Eigen-CAM maps of ``layer`` (N,H,W); one forward run per image, which also finds each image's class
    probabilities and its target (PREDICTED: its predicted class), reported to the bound Decisions (the targets
    decide nothing else)."""
    LAYER.check("layer", layer)
    x, t = batch(images, targets, predicted=True)
    activations, probabilities = forward(weights, x, [layer, "probabilities"])
    report(probabilities, np.where(t == PREDICTED, probabilities.argmax(axis=1), t))
    return np.maximum(np.stack([first_component(output) for output in activations]), 0).astype(np.float32)


def served_eigen_cam(runs: LayerRuns, images: np.ndarray, targets: np.ndarray, layer: str) -> np.ndarray:
    """Eigen-CAM maps (N,h,w) of an imported model's ``layer``: one forward run per image, the targets unused."""
    activations = runs.activations(images)
    return np.maximum(np.stack([first_component(output) for output in activations]), 0).astype(np.float32)


METHOD = Method(
    "eigen-cam",
    eigen_cam,
    title="Eigen-CAM",
    text="(Muhammad & Yeasin 2020; class-agnostic)",
    parameters={"layer": LAYER},
    returns="(N,H,W) float32 of the layer",
    signed=False,
    needs_gradients=False,
    layers=LAYER.options,
    finds_targets=True,
    maps=resized_to_input,
    any_model=AnyModel(served_eigen_cam, layer=True, forward=True),
)
