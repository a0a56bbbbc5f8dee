"""How good a served classifier's explanation is: the quality metrics (``service.quality``) of an Explanation.

The shipped classifier's parts handed to the metrics as callables: its logits and probabilities from the forward
graph of its weights, the explanation's method with the same parameters (over the per-pixel maps), and for the
randomisation test the same method over the copies of the model's ONNX graph, their weights read from the copies
and kept with their onnxruntime sessions per (model, seed) (RANDOMISED_CASCADES of them), so that the sanity check
builds no session after its first request. Every run holds the model's inference slot, as the explanation's own
runs do.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import Any

import numpy as np
import onnx

from service.attribution import ClassifierWeights, Method, classifier_weights
from service.graphs.backward_graph import RunPolicy, graphs_of, run_policy
from service.graphs.classifier_graph import forward_model
from service.graphs.classifier_weights import CLASSES
from service.quality import randomisation
from service.quality.callables import ExplainFn
from service.quality.report import MetricLimits, Subject, chosen_metrics, measure
from service.runtime.cancellation import checkpoint
from service.runtime.registry import LoadedModel
from service.studies.explain import Explanation, method_of, weights_of

COMPLETE_METHODS = ("integrated-gradients",)
LOADED_GRAPHS = 8  # model files whose ONNX graph is kept read
# (model, seed) randomisation cascades kept with their sessions: the shipped classifier's 4 copies take about
# 100-140 MB resident (their weights and backward sessions), so one cascade (the default seed's) is kept
RANDOMISED_CASCADES = 1


def _forward(weights: ClassifierWeights, images: np.ndarray, output: str) -> np.ndarray:
    """The forward graph's ``output`` (logits or probabilities) for images (N, 28, 28)."""
    feeds = {"input": np.asarray(images, np.float32)}
    return graphs_of(weights).run("forward", forward_model, feeds, [output])[0]


def _explainer(method: Method, parameters: dict[str, Any], weights: ClassifierWeights) -> ExplainFn:
    """``method`` with ``parameters`` over the classifier of ``weights``: its per-pixel maps (N, 28, 28)."""

    def run(images: np.ndarray, outputs: list[str]) -> dict[str, np.ndarray]:
        return {name: _forward(weights, images, "probabilities") for name in outputs}

    def explain(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        checkpoint()
        return method.maps(method.compute(run, weights, images, np.asarray(targets, np.intp), **parameters))[1]

    return explain


def _explainer_for(method: Method, parameters: dict[str, Any]) -> Any:
    def explainer(graph: onnx.ModelProto) -> ExplainFn:
        return _explainer(method, parameters, classifier_weights(graph))

    return explainer


@lru_cache(maxsize=LOADED_GRAPHS)
def model_graph(onnx_bytes: bytes) -> onnx.ModelProto:
    """The ONNX graph of a model file's bytes, read once (the metrics only read it)."""
    return onnx.load_from_string(onnx_bytes)


@lru_cache(maxsize=RANDOMISED_CASCADES)
def _randomised_weights(onnx_bytes: bytes, seed: int) -> tuple[tuple[str, ClassifierWeights], ...]:
    """The weights of the randomisation cascade's copies of a model for ``seed``, kept so that their onnxruntime
    sessions (made on first use, ``graphs_of``) serve every request with that model and seed: each copy one backward
    model for every method (the cascade's memory stays that of one model per copy)."""
    copies = tuple(
        (layer, classifier_weights(copy))
        for layer, copy in randomisation.randomised_cascade(model_graph(onnx_bytes), seed)
    )
    for _, weights in copies:
        graphs_of(weights, specialised=False)
    return copies


def _randomised_explainers(
    onnx_bytes: bytes, method: Method, parameters: dict[str, Any]
) -> Callable[[int], list[tuple[str, ExplainFn]]]:
    def explainers(seed: int) -> list[tuple[str, ExplainFn]]:
        return [
            (layer, _explainer(method, parameters, weights)) for layer, weights in _randomised_weights(onnx_bytes, seed)
        ]

    return explainers


def metrics_asked(method: str, text: str | None) -> tuple[str, ...]:
    """The metrics a request's ``metrics`` text names for ``method`` (``service.quality.report.chosen_metrics``)."""
    method_of(method)
    return chosen_metrics(text, method in COMPLETE_METHODS)


def explanation_quality(
    model: LoadedModel,
    images: np.ndarray,
    explanation: Explanation,
    names: tuple[str, ...],
    limits: MetricLimits = MetricLimits(),
) -> list[dict[str, Any]]:
    """Each image's values of the metrics ``names`` for ``explanation`` of ``images`` (N, 28, 28) under ``model``
    (the cost checked against ``limits`` before any run)."""
    method = method_of(explanation.method)
    weights = weights_of(model)
    subject = Subject(
        images=np.asarray(images, np.float32).reshape(-1, 28, 28),
        targets=explanation.targets.astype(np.intp),
        maps=explanation.pixels,
        logits=partial(_forward, weights, output="logits"),
        probabilities=partial(_forward, weights, output="probabilities"),
        explain=_explainer(method, explanation.parameters, weights),
        evaluations=method.evaluations(explanation.parameters),
        graph=model_graph(model.onnx_bytes),
        explainer_for=_explainer_for(method, explanation.parameters),
        randomised_explainers=_randomised_explainers(model.onnx_bytes, method, explanation.parameters),
        classes=CLASSES,
        complete=explanation.method in COMPLETE_METHODS,
    )
    with run_policy(RunPolicy(partial(model.gate.slot, model.name), model.batch_threads, None)):
        return measure(subject, names, limits)
