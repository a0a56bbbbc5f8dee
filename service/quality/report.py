"""The metrics a request names, their cost known before any run, and their values per image.

``chosen_metrics`` reads the request's list (``all`` or comma-separated names); ``cost`` counts the passes of one
image through the model (forward or forward-and-backward) that the chosen metrics take, so that a request over
``MetricLimits.max_work`` is refused before it runs (``TooMuchMetricWork``); ``measure`` computes them over a
``Subject``: the images, their targets and maps, and the model as callables (``service.quality``'s docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from service.attribution.faithfulness import STEPS, faithfulness, faithfulness_over
from service.errors import NotApplicableError, TooLargeError
from service.quality import randomisation
from service.quality.callables import ExplainerFor, ExplainFn, RandomisedExplainers, ScoresFn
from service.quality.completeness import BASELINE, completeness_gap
from service.quality.effective_complexity import effective_complexity
from service.quality.faithfulness_correlation import draw_subsets, faithfulness_correlation
from service.quality.max_sensitivity import draw_noise, max_sensitivity
from service.quality.road import PERCENTAGES, road
from service.quality.similarity import WINDOW
from service.quality.sparseness import sparseness

METRICS = (
    "deletion",
    "insertion",
    "road_morf",
    "road_lerf",
    "faithfulness_correlation",
    "max_sensitivity",
    "sparseness",
    "effective_complexity",
    "completeness_gap",
    "sanity",
)
COMPLETE_ONLY = "completeness_gap"  # defined for a path integral from a baseline: integrated gradients


class UnknownMetric(NotApplicableError, ValueError):
    """A metric name the service does not compute; the message lists them."""


class MetricNotApplicable(NotApplicableError, ValueError):
    """A metric that does not apply to the method or the model asked for."""


class TooMuchMetricWork(TooLargeError):
    """Metrics whose passes through the model are over ``MetricLimits.max_work``."""

    code = "too_much_metric_work"


@dataclass(frozen=True)
class MetricLimits:
    """Max-sensitivity's ``sensitivity_samples`` noisy copies within ``sensitivity_radius``, faithfulness
    correlation's ``correlation_runs`` subsets of ``correlation_subset`` pixels, and ``max_work``: the most passes
    of one image through the model (forward, or forward and backward) the metrics of one request may take;
    ``sanity_steps``: the most randomised copies the sanity checks make of an imported model (its layers grouped
    into that many steps, ``randomisation.cascade_steps``; the shipped classifier's four layers are a step each)."""

    sensitivity_samples: int = 10
    sensitivity_radius: float = 0.2
    correlation_runs: int = 50
    correlation_subset: int = 78
    max_work: int = 5_000
    sanity_steps: int = 8


@dataclass(frozen=True)
class Subject:
    """What the metrics measure: ``images`` (N, H, W) grey in [0, 1] with black 0, or (N, C, H, W) in a model's
    normalised input with ``baseline`` (C,) its black per channel (what a removed pixel becomes) and ``scale`` (C,)
    one pixel unit per channel (its 1 / std: the noise of max-sensitivity and ROAD is drawn in pixel units times
    it); their ``targets`` and ``maps`` (N, H, W) over the pixels; the model's ``logits`` and ``probabilities``;
    ``explain`` the method with its parameters;
    ``evaluations`` the passes one image's explanation costs; ``graph`` the model's ONNX graph and ``explainer_for``
    the method over a copy of it (None: no randomisation test); ``classes``; ``complete`` whether the method is a
    path integral from the black image (integrated gradients: the completeness gap applies);
    ``randomised_explainers`` the method over the randomisation cascade's copies for a seed, when the caller keeps
    those copies (and their sessions) between requests (None: copies made from ``graph`` by ``explainer_for``);
    ``sanity_steps`` the copies the cascade makes when its caller groups the layers (None: one per layer)."""

    images: np.ndarray
    targets: np.ndarray
    maps: np.ndarray
    logits: ScoresFn
    probabilities: ScoresFn
    explain: ExplainFn
    evaluations: int
    graph: onnx.ModelProto | None
    explainer_for: ExplainerFor | None
    classes: int
    complete: bool = False
    randomised_explainers: RandomisedExplainers | None = None
    baseline: np.ndarray | None = None
    scale: np.ndarray | None = None
    sanity_steps: int | None = None


def chosen_metrics(text: str | None, complete: bool) -> tuple[str, ...]:
    """The metrics ``text`` names (None or empty: none; ``all``: every one that applies); UnknownMetric listing
    them, MetricNotApplicable for the completeness gap of a method that is not a path integral."""
    if not text:
        return ()
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return tuple(name for name in METRICS if complete or name != COMPLETE_ONLY)
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise UnknownMetric(f"unknown metric {', '.join(map(repr, unknown))}; metrics: all or {', '.join(METRICS)}")
    if COMPLETE_ONLY in names and not complete:
        raise MetricNotApplicable("completeness_gap is defined for integrated gradients only; ask without it")
    return tuple(dict.fromkeys(names))


def costs(names: tuple[str, ...], evaluations: int, layers: int, limits: MetricLimits) -> dict[str, int]:
    """The passes of one image through the model each metric of ``names`` takes (``evaluations``: one
    explanation's; ``layers``: the parametrised layers the randomisation test re-draws)."""
    per_metric = {
        "deletion": 2 * (STEPS + 1),  # the map's order and a random order
        "insertion": 2 * (STEPS + 1),
        "road_morf": len(PERCENTAGES),
        "road_lerf": len(PERCENTAGES),
        "faithfulness_correlation": limits.correlation_runs + 1,
        "max_sensitivity": limits.sensitivity_samples * evaluations,
        "sparseness": 0,
        "effective_complexity": 0,
        "completeness_gap": 2,
        "sanity": (layers + 1) * evaluations,
    }
    return {name: per_metric[name] for name in names}


def check_cost(names: tuple[str, ...], subject: Subject, limits: MetricLimits) -> int:
    """The passes the metrics take over all images; TooMuchMetricWork naming the limit when over it."""
    layers = len(randomisation.parametrised_layers(subject.graph)) if subject.graph is not None else 0
    if subject.sanity_steps is not None:
        layers = subject.sanity_steps
    return check_work(costs(names, subject.evaluations, layers, limits), len(subject.images), limits)


def check_work(each: dict[str, int], images: int, limits: MetricLimits) -> int:
    """The passes metrics costing ``each`` per image take over ``images``; TooMuchMetricWork naming the limit
    when over it (a batch's metrics are checked this way before its maps are computed)."""
    work = images * sum(each.values())
    if work > limits.max_work:
        costly = ", ".join(f"{name} {passes:,}" for name, passes in sorted(each.items(), key=lambda i: -i[1]) if passes)
        raise TooMuchMetricWork(
            f"these metrics take {work:,} passes through the model for {images} image(s) ({costly} "
            f"per image); the limit max_metric_work is {limits.max_work:,}: ask for fewer metrics or images"
        )
    return work


def _number(value: float) -> float | None:
    """A JSON number, None for NaN (an undefined correlation)."""
    return None if math.isnan(value) else float(value)


def _check_applicable(subject: Subject, names: tuple[str, ...], limits: MetricLimits) -> None:
    """MetricNotApplicable, before any run, for a metric the maps' size does not allow: faithfulness correlation's
    subsets larger than the map, the sanity checks' SSIM windows larger than it."""
    height, width = subject.maps.shape[1:]
    if "faithfulness_correlation" in names and limits.correlation_subset > height * width:
        raise MetricNotApplicable(
            f"faithfulness_correlation's subsets of {limits.correlation_subset} pixels do not fit in the "
            f"{height * width} pixels of the map; ask without it"
        )
    if "sanity" in names and min(height, width) < WINDOW:
        raise MetricNotApplicable(
            f"the sanity checks compare maps by SSIM over {WINDOW} x {WINDOW} windows and these maps are "
            f"{height} x {width}; ask without sanity"
        )


def _sanity(subject: Subject, seed: int) -> list[dict[str, Any]]:
    if subject.graph is None or subject.explainer_for is None:
        raise MetricNotApplicable("the sanity checks need the model's ONNX graph; ask without sanity")

    layers = randomisation.parametrised_layers(subject.graph)
    if subject.randomised_explainers is not None:
        cascade = randomisation.cascade_similarity(
            subject.randomised_explainers(seed), subject.images, subject.targets, subject.maps
        )
    else:
        cascade = randomisation.parameter_randomisation(
            subject.graph, subject.explainer_for, subject.images, subject.targets, subject.maps, seed
        )
    others = randomisation.other_classes(subject.targets, subject.classes, seed)
    similarity, same_other = randomisation.random_logit(subject.explain, subject.images, subject.maps, others)
    answers = []
    for i in range(len(subject.images)):
        parameters_pass, logit_pass = randomisation.passes(
            cascade[-1].spearman[i], similarity[i], bool(cascade[-1].same[i]), bool(same_other[i])
        )
        answers.append(
            {
                "passes": parameters_pass and logit_pass,
                "parameter_randomization": {
                    "passes": parameters_pass,
                    "order": "cascading, last layer first",
                    "layers": len(layers),
                    "spearman_threshold": randomisation.SPEARMAN_THRESHOLD,
                    "similarity": [
                        {"layer": step.layer, "spearman": _number(step.spearman[i]), "ssim": _number(step.ssim[i])}
                        for step in cascade
                    ],
                },
                "random_logit": {
                    "passes": logit_pass,
                    "other_class": int(others[i]),
                    "ssim": _number(similarity[i]),
                    "ssim_threshold": randomisation.SSIM_THRESHOLD,
                },
            }
        )
    return answers


def measure(subject: Subject, names: tuple[str, ...], limits: MetricLimits, seed: int = 0) -> list[dict[str, Any]]:
    """Each image's values of the metrics ``names`` (checked against ``limits`` first), JSON-ready."""
    check_cost(names, subject, limits)
    _check_applicable(subject, names, limits)
    x, t, maps = subject.images, subject.targets, subject.maps
    n = len(x)
    columns: dict[str, list[Any]] = {}
    baseline = BASELINE if subject.baseline is None else subject.baseline
    if "deletion" in names or "insertion" in names:
        probabilities = subject.probabilities
        if subject.baseline is None:
            curves = faithfulness(lambda images, outputs: {"output": probabilities(images)}, x, t, maps, seed)
        else:
            curves = faithfulness_over(probabilities, x, subject.baseline, t, maps, seed)
        columns["deletion"] = [
            {"area": float(a), "random_area": float(r)} for a, r in zip(curves.deletion_auc, curves.random_deletion_auc)
        ]
        columns["insertion"] = [
            {"area": float(a), "random_area": float(r)}
            for a, r in zip(curves.insertion_auc, curves.random_insertion_auc)
        ]
    for name, first in (("road_morf", True), ("road_lerf", False)):
        if name in names:
            correct, area = road(subject.logits, x, t, maps, first, seed=seed, scale=subject.scale)
            columns[name] = [
                {"area": float(a), "percentages": list(PERCENTAGES), "correct": c.astype(bool).tolist()}
                for a, c in zip(area, correct)
            ]
    if "faithfulness_correlation" in names:
        subsets = [
            draw_subsets(maps[0].size, limits.correlation_runs, limits.correlation_subset, seed + i) for i in range(n)
        ]
        columns["faithfulness_correlation"] = [
            _number(v) for v in faithfulness_correlation(subject.logits, x, t, maps, subsets, baseline)
        ]
    if "max_sensitivity" in names:
        noise = draw_noise(x.shape, limits.sensitivity_samples, limits.sensitivity_radius, seed, subject.scale)
        largest, _ = max_sensitivity(subject.explain, x, t, maps, noise)
        columns["max_sensitivity"] = [float(v) for v in largest]
    if "sparseness" in names:
        columns["sparseness"] = [float(v) for v in sparseness(maps)]
    if "effective_complexity" in names:
        columns["effective_complexity"] = [int(v) for v in effective_complexity(maps)]
    if "completeness_gap" in names:
        columns["completeness_gap"] = [float(v) for v in completeness_gap(subject.logits, x, t, maps, baseline)]
    if "sanity" in names:
        columns["sanity"] = _sanity(subject, seed)
    return [{name: columns[name][i] for name in names} for i in range(n)]
