"""Occlusion sensitivity (Zeiler & Fergus 2014, §4.2): how much the target's probability drops when a square of
value ``fill`` (by default 0, the black of the MNIST background) hides part of the digit.

A patch x patch square is slid with ``stride`` over the image; grid[i, j] = p(x) - p(x occluded at row
i·stride, col j·stride), p the target's softmax probability. ``pixels`` spreads the grid back over the 28x28
image the way Captum's Occlusion does: each pixel gets the mean of the differences of the squares covering it
(0 where no square reaches, when the stride does not tile the image).

Exact, and incremental: a square changes only the pool cells whose receptive field it touches (a K x K window of
pool), so each occluded image is the original's pool with that window recomputed from a (2K+4)-pixel crop around
the square (the two valid 3x3 convolutions' halo), then the dense layers over the whole pool. All squares of an
image go through onnxruntime as one batch of crops and one batch of pools, with the classifier's own weights
(classifier_graph's builders): about a fifth of the convolution work of running every occluded image whole. A
square whose pixels all equal ``fill`` already (on MNIST, the black background: 57 % of the default squares of
the first 1,000 test digits) leaves the image as it is, so its difference is exactly 0 and it is not run.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from numpy.lib.stride_tricks import sliding_window_view

from service.attribution.forward_occlusion import FORWARD_RUNS
from service.attribution.inputs import PREDICTED, Range, RunFn, batch
from service.attribution.method import Limits, Maps, Method
from service.graphs.backward_graph import graphs_of, report
from service.graphs.classifier_graph import GraphBuilder, conv_layers, dense_layers
from service.graphs.classifier_weights import CLASSES, IMAGE_SIZE, ClassifierWeights

PATCH = Range(default=4, low=1, high=IMAGE_SIZE, text="the square's side in pixels, {low}-{high}")
STRIDE = Range(default=2, low=1, high=IMAGE_SIZE, text="the square's step in pixels, {low}-{high}")
FILL = Range(default=0.0, low=0.0, high=1.0, integer=False, offered=False)  # the API keeps the MNIST background


@dataclass(frozen=True)
class OcclusionMaps:
    """``grid`` (N,R,C) of probability drops per square position, ``starts`` the squares' first row (and column)
    in pixels, ``pixels`` (N,28,28) the drops averaged over the squares covering each pixel."""

    grid: np.ndarray
    starts: np.ndarray
    pixels: np.ndarray


def square_starts(patch: int, stride: int) -> np.ndarray:
    """First row (and column) of every square position: 0, stride, ... while the square stays in the image."""
    return np.arange(0, IMAGE_SIZE - patch + 1, stride)


def squares(patch: int, stride: int) -> int:
    """How many square positions occlusion evaluates for ``patch`` and ``stride``."""
    return len(square_starts(patch, stride)) ** 2


def features_model(weights: ClassifierWeights) -> onnx.ModelProto:
    """conv1 -> conv2 -> pool of NCHW crops of any size (M,1,H,W): the pool (M,64,h,w)."""
    b = GraphBuilder()
    conv_layers(b, weights, "crops")
    return b.model("convlens_features", {"crops": ["M", 1, "H", "W"]}, {"pool": ["M", "C", "h", "w"]})


def head_model(weights: ClassifierWeights) -> onnx.ModelProto:
    """dense1 -> output softmax of NCHW pools (M,64,12,12): the class probabilities (M,10)."""
    b = GraphBuilder()
    _, logits = dense_layers(b, weights, "pool")
    b.op("Softmax", logits, name="output", axis=-1)
    side = int(np.sqrt(weights.dense1_kernel.shape[0] // weights.conv2_kernel.shape[3]))
    return b.model(
        "convlens_head",
        {"pool": ["M", weights.conv2_kernel.shape[3], side, side]},
        {"output": ["M", CLASSES]},
    )


def _windows(starts: np.ndarray, patch: int, halo: int, side: int) -> tuple[int, np.ndarray]:
    """The pool window size K and, per square start, the window's first pool row: the window covers every pool
    cell whose receptive field (rows 2a .. 2a+1+halo) meets the square's rows, shifted to stay inside pool."""
    first = np.maximum(0, -((halo + 1 - starts) // 2))  # ceil((start - 1 - halo) / 2), at least 0
    last = np.minimum(side - 1, (starts + patch - 1) // 2)
    size = int((last - first + 1).max())
    return size, np.minimum(first, side - size)


def occlusion(
    run: RunFn,
    weights: ClassifierWeights,
    images: np.ndarray,
    targets: np.ndarray,
    patch: int = PATCH.default,
    stride: int = STRIDE.default,
    fill: float = FILL.default,
) -> OcclusionMaps:
    """Occlusion maps of each image's target class (PREDICTED: its predicted class, read off the unoccluded
    image's probabilities, which every image's last run computes anyway); ``run``, the served model, is not
    needed: the classifier's layers run from ``weights``. Each image's probabilities and target are reported to
    the bound RunPolicy's Decisions."""
    PATCH.check("patch", patch)
    STRIDE.check("stride", stride)
    FILL.check("fill", fill)
    x, t = batch(images, targets, predicted=True)
    graphs = graphs_of(weights)
    halo = weights.conv1_kernel.shape[0] + weights.conv2_kernel.shape[0] - 2
    side = (IMAGE_SIZE - halo) // 2
    starts = square_starts(patch, stride)
    size, window = _windows(starts, patch, halo, side)
    crop = 2 * size + halo
    rows, cols = np.repeat(np.arange(len(starts)), len(starts)), np.tile(np.arange(len(starts)), len(starts))
    # each square inside its crop: rows (and columns) start - 2·window .. + patch
    inside = np.arange(crop)[None, :] - (starts - 2 * window)[:, None]
    square = (inside >= 0) & (inside < patch)  # (positions, crop)
    mask = square[rows][:, :, None] & square[cols][:, None, :]  # (squares, crop, crop)

    grid = np.zeros((len(x), len(rows)), dtype=np.float32)
    for n, image in enumerate(x):
        under = sliding_window_view(image, (patch, patch))[starts[rows], starts[cols]]
        moved = np.flatnonzero((under != np.float32(fill)).any(axis=(1, 2)))  # the squares that change the image
        base = graphs.run("features", features_model, {"crops": image[None, None]}, ["pool"])[0]
        pools = np.repeat(base, len(moved) + 1, axis=0)
        if len(moved):
            a, c = window[rows[moved]], window[cols[moved]]
            crops = sliding_window_view(image, (crop, crop))[2 * a, 2 * c]
            crops = np.where(mask[moved], np.float32(fill), crops)[:, None]
            patched = graphs.run("features", features_model, {"crops": crops}, ["pool"])[0]
            cells = np.arange(size)  # each occluded pool takes its square's window, all in one assignment
            pools[
                np.arange(1, len(moved) + 1)[:, None, None, None],
                np.arange(pools.shape[1])[None, :, None, None],
                (a[:, None] + cells)[:, None, :, None],
                (c[:, None] + cells)[:, None, None, :],
            ] = patched
        p = graphs.run("head", head_model, {"pool": pools}, ["output"])[0]
        target = int(p[0].argmax()) if t[n] == PREDICTED else t[n]
        report(p[:1], np.array([target]))
        grid[n, moved] = p[0, target] - p[1:, target]

    cover = coverage(patch, stride)
    count = cover.sum(axis=0)
    total = grid.astype(np.float64) @ cover
    pixels = np.divide(total, count, out=np.zeros_like(total), where=count > 0).astype(np.float32)
    return OcclusionMaps(grid.reshape(len(x), len(starts), len(starts)), starts, pixels.reshape(x.shape))


@functools.lru_cache(maxsize=64)
def coverage(patch: int, stride: int) -> np.ndarray:
    """(squares, 784) float64: 1 where the square (row-major over the positions) covers the pixel."""
    starts = square_starts(patch, stride)
    inside = np.arange(IMAGE_SIZE)[None, :] - starts[:, None]
    line = ((inside >= 0) & (inside < patch)).astype(np.float64)  # (positions, 28)
    cover = line[:, None, :, None] * line[None, :, None, :]  # (row position, col position, 28, 28)
    cover.setflags(write=False)
    return cover.reshape(len(starts) ** 2, IMAGE_SIZE * IMAGE_SIZE)


def evaluations(parameters: Mapping[str, Any]) -> int:
    """Runs one image costs: one per square position, and the image itself."""
    return squares(parameters["patch"], parameters["stride"]) + 1


def check_squares(parameters: Mapping[str, Any], limits: Limits) -> None:
    """ValueError when ``patch`` and ``stride`` make more squares per image than ``limits.max_squares``."""
    count = squares(parameters["patch"], parameters["stride"])
    if count > limits.max_squares:
        raise ValueError(
            f"patch {parameters['patch']} and stride {parameters['stride']} make {count} squares; at most "
            f"{limits.max_squares} per image: raise the stride or the patch"
        )


def maps(result: OcclusionMaps) -> Maps:
    """The grid of drops per square position, and the per-pixel means of the squares covering each pixel."""
    return result.grid, result.pixels


def starts_of(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The first row (and column) of the squares, for reading the grid."""
    return {"starts": square_starts(parameters["patch"], parameters["stride"])}


METHOD = Method(
    "occlusion",
    occlusion,
    parameters={"patch": PATCH, "stride": STRIDE, "fill": FILL},
    returns="OcclusionMaps",
    needs_gradients=False,
    finds_targets=True,
    evaluations=evaluations,
    check_limits=check_squares,
    maps=maps,
    answers_pixels=True,
    extra=starts_of,
    forward_runs=FORWARD_RUNS,
)
