"""What the metrics are given of a model: callables, not weights (``service.quality``'s docstring says why)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import onnx

# images (N, H, W) grey in [0, 1], or (N, C, H, W) in a model's normalised input, float32 -> (N, classes) scores;
# which score (logits, probabilities) each caller states
ScoresFn = Callable[[np.ndarray], np.ndarray]
# images (N, H, W) or (N, C, H, W) and target classes (N,) -> maps (N, H, W) over the images' pixels
ExplainFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
# a (randomised) copy of the model's ONNX graph -> the same attribution method over that copy
ExplainerFor = Callable[[onnx.ModelProto], ExplainFn]
# a seed -> (layer, the method over the model randomised down to that layer), the randomisation cascade's order
# (an iterable, so that a caller may make each copy only when it is used and free it after)
RandomisedExplainers = Callable[[int], Iterable[tuple[str, ExplainFn]]]
# what a removed pixel becomes: 0 for the grey (N, H, W) images, else one input value per channel (C,)
Baseline = float | np.ndarray


def target_scores(scores: ScoresFn, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each image's score of its target class (N,), float64."""
    return scores(images)[np.arange(len(images)), targets].astype(np.float64)


def normalised_by_max(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its largest magnitude (Quantus's ``normalise_by_max``); an all-zero map as it is."""
    flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    peak = np.abs(flat).max(axis=1, keepdims=True)
    return (flat / np.where(peak == 0, 1, peak)).reshape(np.shape(maps))


def baseline_images(images: np.ndarray, baseline: Baseline) -> np.ndarray:
    """Images like ``images`` with every pixel at ``baseline`` (per channel for (N, C, H, W) images)."""
    if np.ndim(baseline) == 0:
        return np.full_like(images, baseline)
    fill = np.asarray(baseline, images.dtype).reshape(1, -1, 1, 1)
    return np.broadcast_to(fill, images.shape).copy()


def as_planes(images: np.ndarray) -> np.ndarray:
    """Images (N, H, W) as (N, 1, H, W); (N, C, H, W) as they are."""
    return images[:, None] if images.ndim == 3 else images
