"""What the metrics are given of a model: callables, not weights (``service.quality``'s docstring says why)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import onnx

# images (N, H, W) float32 -> (N, classes) scores; which score (logits, probabilities) each caller states
ScoresFn = Callable[[np.ndarray], np.ndarray]
# images (N, H, W) and target classes (N,) -> maps (N, H, W) over the images' pixels
ExplainFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
# a (randomised) copy of the model's ONNX graph -> the same attribution method over that copy
ExplainerFor = Callable[[onnx.ModelProto], ExplainFn]
# a seed -> (layer, the method over the model randomised down to that layer), the randomisation cascade's order
RandomisedExplainers = Callable[[int], Sequence[tuple[str, ExplainFn]]]


def target_scores(scores: ScoresFn, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each image's score of its target class (N,), float64."""
    return scores(images)[np.arange(len(images)), targets].astype(np.float64)


def normalised_by_max(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its largest magnitude (Quantus's ``normalise_by_max``); an all-zero map as it is."""
    flat = np.asarray(maps, dtype=np.float64).reshape(len(maps), -1)
    peak = np.abs(flat).max(axis=1, keepdims=True)
    return (flat / np.where(peak == 0, 1, peak)).reshape(np.shape(maps))
