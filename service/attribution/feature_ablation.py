"""Feature ablation (as Captum's FeatureAblation; Zeiler & Fergus 2014's occlusion with segments for squares):
each segment of the image set to the baseline in turn, and the target's probability drop p(x) - p(x without the
segment) given to every pixel of that segment.

The segments are ``grid:N`` or ``slic:N`` (``perturbation.segment_labels``); one forward run of the model per
segment and one of the image, in batches. Signed: a segment whose removal raises the target's probability gets
a negative value. The raw map is the per-pixel map (N,H,W), as Captum returns it for a feature mask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from service.attribution.inputs import segment_count
from service.attribution.method import ForwardRuns, Maps, Method, Scores
from service.attribution.perturbation import SEGMENTS, composed, on_classifier, segment_labels, target_scores


def ablation_drops(
    scores: Scores, images: np.ndarray, targets: np.ndarray, baseline: np.ndarray, segments: str = SEGMENTS.default
) -> Maps:
    """Feature ablation of images (N,C,H,W) for their targets: (per-pixel drops, the same) both (N,H,W)."""
    maps = []
    for image, target in zip(images, targets, strict=True):
        labels = segment_labels(image, segments)
        count = int(labels.max()) + 1
        keep = np.vstack([np.ones(count, bool), ~np.eye(count, dtype=bool)])
        probabilities = target_scores(scores, composed(image, baseline, labels, keep), int(target))
        maps.append((probabilities[0] - probabilities[1:])[labels])
    pixels = np.stack(maps).astype(np.float32)
    return pixels, pixels


def evaluations(parameters: Mapping[str, Any]) -> int:
    """Runs one image costs: one per segment asked for, and the image itself."""
    return segment_count(parameters["segments"]) + 1


METHOD = Method(
    "feature-ablation",
    on_classifier(ablation_drops),
    title="Feature ablation",
    text="(Captum's FeatureAblation over `segments`)",
    parameters={"segments": SEGMENTS},
    needs_gradients=False,
    evaluations=evaluations,
    forward_runs=ForwardRuns(ablation_drops),
)
