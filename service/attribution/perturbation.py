"""What the black-box methods (RISE, KernelSHAP, feature ablation) share: the model's target probability over
batches of perturbed copies, the image's segments (``grid:N`` or ``slic:N``), composing a copy from the segments
it keeps, and the adapter that runs them on the shipped classifier.

The perturbed copies go through the model's forward run only, in runs of at most RUN_VALUES input values
(about 16 MB: 5,000 MNIST digits, 27 images of 3 x 224 x 224), a cancellation checkpoint before each. What is
removed takes the ``baseline``: per channel, the model's "nothing there" (0, MNIST's black background, for the
shipped classifier; the normalised black for an imported model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service.attribution.inputs import RunFn, Segments, batch
from service.attribution.method import Maps, Scores
from service.contract import PROBABILITIES
from service.errors import NotApplicableError
from service.graphs.classifier_weights import ClassifierWeights
from service.runtime.cancellation import checkpoint

RUN_VALUES = 4 * 1024 * 1024
SLIC_COMPACTNESS = 0.1  # over the image scaled to [0, 1]: superpixels follow the strokes, not a grid
SEGMENTS = Segments(
    default="grid:7",
    high=784,
    text="the features switched off and on: `grid:N` (an N x N grid) or `slic:N` (about N SLIC superpixels)",
    limit="max_segments",
)


class SegmentsTooFine(NotApplicableError, ValueError):
    """A grid of more rows or columns than the image has pixels."""


def target_scores(scores: Scores, images: np.ndarray, target: int) -> np.ndarray:
    """The ``target`` class's probability (M,) float64 of each image (M,C,H,W), in runs of at most RUN_VALUES."""
    rows = max(1, RUN_VALUES // max(1, images[0].size))
    parts = []
    for start in range(0, len(images), rows):
        checkpoint()
        parts.append(scores(images[start : start + rows])[:, target])
    return np.concatenate(parts).astype(np.float64)


def segment_labels(image: np.ndarray, segments: str) -> np.ndarray:
    """(H,W) labels 0..M-1 of the segments of ``image`` (C,H,W): ``grid:N`` cuts rows and columns into N near-equal
    parts (row-major labels); ``slic:N`` asks scikit-image's SLIC for about N superpixels of the image min-max
    scaled to [0, 1], relabelled 0..M-1."""
    kind, _, count = segments.partition(":")
    n = int(count)
    _, height, width = image.shape
    if kind == "grid":
        if n > min(height, width):
            raise SegmentsTooFine(f"segments grid:{n} has more cells per side than the {height}x{width} image")
        rows, cols = np.arange(height) * n // height, np.arange(width) * n // width
        return rows[:, None] * n + cols[None, :]
    from skimage.segmentation import slic  # scikit-image loads in about a second: only when asked for

    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    labels = slic(
        scaled.astype(np.float64),
        n_segments=n,
        compactness=SLIC_COMPACTNESS,
        channel_axis=0,
        start_label=0,
        enforce_connectivity=True,
    )
    return np.unique(labels, return_inverse=True)[1].reshape(height, width)


def composed(image: np.ndarray, baseline: np.ndarray, labels: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Copies (K,C,H,W) of ``image`` (C,H,W): where a copy's ``keep`` (K,M) row is False for a pixel's segment, the
    pixel takes ``baseline`` (C,)."""
    kept = keep[:, labels][:, None]
    return np.where(kept, image[None], baseline.astype(image.dtype)[None, :, None, None])


def classifier_scores(run: RunFn) -> Scores:
    """The shipped classifier's forward run as Scores: (M,1,28,28) digits -> (M,10) softmax probabilities."""
    return lambda images: run(images[:, 0], [PROBABILITIES])[PROBABILITIES]


def on_classifier(over_any_model: Callable[..., Maps]) -> Callable[..., np.ndarray]:
    """The entry point (``Method.compute``) of a black-box method on the shipped classifier: its forward run, one
    channel, 0 for what is removed; the per-pixel maps (N,28,28) are the answer."""

    def compute(
        run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, **parameters: Any
    ) -> np.ndarray:
        x, t = batch(images, targets)
        _, pixels = over_any_model(classifier_scores(run), x[:, None], t, np.zeros(1, np.float32), **parameters)
        return pixels

    compute.__doc__ = over_any_model.__doc__
    return compute
