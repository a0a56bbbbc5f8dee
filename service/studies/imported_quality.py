"""How good an imported model's explanation is: the quality metrics (``service.quality``) of an Explanation from
``service.studies.any_model_explain``, the imported counterpart of ``explanation_quality``.

The model's parts handed to the metrics as callables, in its normalised input space, channels first: its logits
(the tensor its gradient methods differentiate; its probabilities when the import found no logits tensor, and
then the completeness gap and faithfulness correlation read probabilities), its probabilities, the explanation's
method with the same parameters (``explain_any``, image by image for each image's target), and per-pixel maps
(N, H, W) of its input size. What a metric removes becomes the model's normalised black per channel, and the noise
of max-sensitivity and ROAD is in [0, 1] pixel units times the model's 1 / std per channel (``Subject``).

The sanity checks' randomisation cascade is over the model's exposed ONNX copy: each step's copy re-draws the
parametrised layers (``randomisation.cascade_steps``, last layer first, at most ``MetricLimits.sanity_steps``
steps), and the method runs over it through backward sessions (gradient methods) or a forward session (forward-run
methods) built for that copy. Each copy and its sessions are made when the cascade reaches it and freed when its
maps are made, counted in the model's memory while they live (``imported_gradients.model_copy``): one copy at a
time, besides the model's graph read for the request. The CAMs that run a head cut from the model's file
(``AnyModel.forward``) have no randomised copy of that head: their sanity is a 422, their other metrics work.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import onnx

from service.attribution import Limits, Method
from service.quality import randomisation
from service.quality.callables import ExplainFn
from service.quality.report import MetricLimits, MetricNotApplicable, Subject, check_work, costs, measure
from service.runtime.cancellation import checkpoint
from service.runtime.imported import ImportedLoadedModel
from service.studies.any_model_explain import chosen_parameters, explain_any, input_range, scores_of
from service.studies.explain import Explanation, method_of
from service.studies.explanation_quality import COMPLETE_METHODS, metrics_asked
from service.studies.forward_explain import channels_first, normalised_black
from service.studies.imported_gradients import GradientLimits, model_copy, seeded_tensor


def imported_metrics_asked(model: ImportedLoadedModel, method: str, text: str | None) -> tuple[str, ...]:
    """The metrics a request's ``metrics`` text names for ``method`` on ``model``: as for the shipped models, but
    ``all`` leaves out the sanity checks of a CAM whose head is cut from the model's file, and naming them is
    MetricNotApplicable saying why."""
    names = metrics_asked(method, text)
    if "sanity" in names and not _has_copies(method_of(method)):
        if text and text.strip() == "all":
            return tuple(name for name in names if name != "sanity")
        raise MetricNotApplicable(
            f"sanity is not measured for {method} on imported model {model.name!r}: its head is cut from the model's "
            "file, so it has no randomised copy; ask without sanity"
        )
    return names


def _has_copies(spec: Method) -> bool:
    """Whether the method runs over a randomised copy of the graph: forward-run methods and gradient methods."""
    return spec.forward_runs is not None or (spec.any_model is not None and not spec.any_model.forward)


def _evaluations(model: ImportedLoadedModel, spec: Method, parameters: dict[str, Any]) -> int:
    """The passes through the model one image's explanation by ``spec`` with ``parameters`` takes."""
    size = model.manifest.input
    if spec.forward_runs is not None:
        runs = spec.forward_runs
        if runs.evaluations is not None:
            return runs.evaluations(parameters, size.height, size.width)
        return spec.evaluations(parameters)
    if spec.any_model is not None and spec.any_model.forward:
        channels = model.layer_shapes[parameters["layer"]][0] or 1
        return spec.any_model.evaluations(channels) if spec.any_model.evaluations else 1
    return spec.evaluations(parameters)


def exposed_graph(model: ImportedLoadedModel) -> onnx.ModelProto:
    """The model's exposed ONNX copy, read from its folder (for one request: the cascade's copies are made of it)."""
    return onnx.load_from_string((model.folder / model.manifest.exposed.file).read_bytes())


def _in_layout(model: ImportedLoadedModel, images: np.ndarray) -> np.ndarray:
    """Images (N, C, H, W) in the model's own layout."""
    return images if model.manifest.input.layout == "nchw" else images.transpose(0, 2, 3, 1)


def _explainer(
    model: ImportedLoadedModel,
    explanation: Explanation,
    limits: Limits,
    gradient_limits: GradientLimits,
    graph: onnx.ModelProto | None = None,
) -> ExplainFn:
    """The explanation's method with its parameters over ``model`` (or over ``graph``, a copy of its exposed graph,
    made and freed within each call): per-pixel maps (N, H, W) of images (N, C, H, W), one image at a time so that
    each image is explained for its own target as its own request would be."""
    spec = method_of(explanation.method)

    def maps(over: ImportedLoadedModel, images: np.ndarray, targets: np.ndarray, runner_for: Any) -> np.ndarray:
        found = []
        for image, target in zip(_in_layout(model, np.asarray(images, np.float32)), targets):
            checkpoint()
            result = explain_any(
                over,
                image[None],
                explanation.method,
                int(target),
                explanation.parameters,
                limits,
                gradient_limits,
                runner_for=runner_for,
            )
            found.append(result.pixels[0])
        return np.stack(found)

    def explain(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if graph is None:
            return maps(model, images, targets, None)
        with model_copy(model, graph, gradient_limits) as copy:
            if spec.forward_runs is not None:
                return maps(copy.forward_model(), images, targets, None)
            return maps(model, images, targets, copy.runner_for)

    return explain


def _randomised_explainers(
    model: ImportedLoadedModel,
    graph: onnx.ModelProto,
    explain_over: Callable[[onnx.ModelProto], ExplainFn],
    steps: int,
) -> Callable[[int], Iterator[tuple[str, ExplainFn]]]:
    """The cascade's (step, method over its copy) for a seed, each copy made only when the cascade reaches it."""

    def explainers(seed: int) -> Iterator[tuple[str, ExplainFn]]:
        for name, layers in randomisation.cascade_steps(graph, steps):
            yield name, explain_over(randomisation.randomised(graph, layers, seed))

    return explainers


def sanity_steps(model: ImportedLoadedModel, limits: MetricLimits) -> int:
    """The copies the randomisation cascade of ``model`` makes under ``limits.sanity_steps``."""
    return len(randomisation.cascade_steps(exposed_graph(model), limits.sanity_steps))


def imported_subject(
    model: ImportedLoadedModel,
    images: np.ndarray,
    explanation: Explanation,
    limits: MetricLimits = MetricLimits(),
    method_limits: Limits = Limits(),
    gradient_limits: GradientLimits = GradientLimits(),
    graph: onnx.ModelProto | None = None,
) -> Subject:
    """What the metrics measure of ``explanation`` of ``images`` (the model's inputs, its layout) under ``model``;
    with ``graph`` (its exposed copy, read for the request), the sanity checks' cascade over copies of it."""
    spec = method_of(explanation.method)
    x = np.stack([channels_first(model, image) for image in model.as_batch(images)])
    read = graph.ByteSize() if graph is not None else 0
    room = dataclasses.replace(gradient_limits, free_bytes=gradient_limits.free_bytes - read)

    def explain_over(copy: onnx.ModelProto) -> ExplainFn:
        return _explainer(model, explanation, method_limits, room, copy)

    return Subject(
        images=x,
        targets=explanation.targets.astype(np.intp),
        maps=explanation.pixels,
        logits=scores_of(model, seeded_tensor(model)),
        probabilities=scores_of(model),
        explain=_explainer(model, explanation, method_limits, gradient_limits),
        evaluations=_evaluations(model, spec, explanation.parameters),
        graph=graph,
        explainer_for=explain_over,
        randomised_explainers=(
            _randomised_explainers(model, graph, explain_over, limits.sanity_steps) if graph is not None else None
        ),
        classes=len(model.manifest.labels),
        complete=explanation.method in COMPLETE_METHODS,
        baseline=normalised_black(model),
        scale=input_range(model).unit.reshape(-1).astype(np.float64),
        sanity_steps=len(randomisation.cascade_steps(graph, limits.sanity_steps)) if graph is not None else None,
    )


def imported_quality(
    model: ImportedLoadedModel,
    images: np.ndarray,
    explanation: Explanation,
    names: tuple[str, ...],
    limits: MetricLimits = MetricLimits(),
    method_limits: Limits = Limits(),
    gradient_limits: GradientLimits = GradientLimits(),
) -> list[dict[str, Any]]:
    """Each image's values of the metrics ``names`` for ``explanation`` of ``images`` (the model's inputs, its
    layout) under ``model``, the cost checked against ``limits`` before any run."""
    if "sanity" not in names:
        return measure(
            imported_subject(model, images, explanation, limits, method_limits, gradient_limits), names, limits
        )
    graph = exposed_graph(model)
    subject = imported_subject(model, images, explanation, limits, method_limits, gradient_limits, graph)
    with model_copy(model, graph, gradient_limits):  # the graph read for the request counts while it is held
        return measure(subject, names, limits)


def check_imported_batch_metrics(
    model: ImportedLoadedModel,
    method: str,
    parameters: dict[str, Any],
    names: tuple[str, ...],
    images: int,
    limits: Limits,
    metric_limits: MetricLimits,
) -> int:
    """The passes through ``model`` the metrics ``names`` of ``images`` maps take, as ``check_batch_metrics`` does
    for the shipped models; TooMuchMetricWork naming ``max_metric_work`` when over it. Runs nothing."""
    spec = method_of(method)
    evaluations = _evaluations(model, spec, chosen_parameters(model, spec, parameters, limits))
    steps = sanity_steps(model, metric_limits) if "sanity" in names else 0
    return check_work(costs(names, evaluations, steps, metric_limits), images, metric_limits)
