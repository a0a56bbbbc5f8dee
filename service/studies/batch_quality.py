"""The quality metrics of a batch of maps: their cost checked before the maps are computed, and their summary.

A batch's metrics are each image's as its single answer has them: measured image by image
(``explanation_quality`` of one image), so each image's random draws (the random pixel order, ROAD's imputation
noise, max-sensitivity's noisy copies, faithfulness correlation's subsets, the other class of the random-logit
test) come from the same seeds whatever the batch holds. What a batch adds is the cost known before any run,
images x each metric's passes through the model against ``MetricLimits.max_work``
(``service.quality.report.check_work``), and a summary of the batch for answers that carry no per-image JSON
(``service.quality.summary``). An imported model's batch is measured the same way through
``service.studies.imported_quality``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from service.quality.randomisation import parametrised_layers
from service.quality.report import MetricLimits, check_work, costs
from service.quality.summary import summary
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel
from service.studies.explain import Explanation, Limits, method_of, parameters_of
from service.studies.explanation_quality import explanation_quality, model_graph
from service.studies.imported_gradients import GradientLimits
from service.studies.imported_quality import check_imported_batch_metrics, imported_quality


def check_batch_metrics(
    model: LoadedModel | ImportedLoadedModel,
    method: str,
    parameters: dict[str, Any],
    names: tuple[str, ...],
    images: int,
    limits: Limits,
    metric_limits: MetricLimits,
) -> int:
    """The passes through ``model`` the metrics ``names`` of ``images`` maps by ``method`` with ``parameters`` take;
    TooMuchMetricWork naming ``max_metric_work`` when over it. Runs nothing."""
    if isinstance(model, ImportedLoadedModel):
        return check_imported_batch_metrics(model, method, parameters, names, images, limits, metric_limits)
    spec = method_of(method)
    evaluations = spec.evaluations(parameters_of(spec, parameters, limits))
    layers = len(parametrised_layers(model_graph(model.onnx_bytes))) if "sanity" in names else 0
    return check_work(costs(names, evaluations, layers, metric_limits), images, metric_limits)


def batch_quality(
    model: LoadedModel | ImportedLoadedModel,
    images: np.ndarray,
    explanation: Explanation,
    names: tuple[str, ...],
    limits: MetricLimits = MetricLimits(),
    method_limits: Limits = Limits(),
    gradient_limits: GradientLimits = GradientLimits(),
) -> list[dict[str, Any]]:
    """Each image's values of the metrics ``names`` for its map in ``explanation``, equal to its single answer's
    (an imported model's under the request's ``method_limits`` and ``gradient_limits``, as its single answer)."""
    if isinstance(model, ImportedLoadedModel):
        images = model.as_batch(np.asarray(images, np.float32))
    else:
        images = np.asarray(images, np.float32).reshape(-1, 28, 28)
    rows = []
    for i in range(len(images)):
        one = slice(i, i + 1)
        single = replace(
            explanation,
            targets=explanation.targets[one],
            probabilities=explanation.probabilities[one],
            predicted=explanation.predicted[one],
            values=explanation.values[one],
            pixels=explanation.pixels[one],
            faithfulness=None,
        )
        if isinstance(model, ImportedLoadedModel):
            rows += imported_quality(model, images[one], single, names, limits, method_limits, gradient_limits)
        else:
            rows += explanation_quality(model, images[one], single, names, limits)
    return rows


def summary_header(rows: list[dict[str, Any]]) -> str:
    """Each column's mean over the batch (``service.quality.summary``), ``name=mean`` joined by ``;`` (``null``
    where no image defines it): the metrics of a .npy answer."""
    return ";".join(
        f"{column}={'null' if value['mean'] is None else format(value['mean'], '.6g')}"
        for column, value in summary(rows).items()
    )
