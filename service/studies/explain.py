"""Attribution maps of a served classifier: "why the network decides" (``service.attribution`` does the math).

This is the step the HTTP wing and ``analyze`` share: the method looked up, its parameters checked against the
method's own ranges and the caller's limits, the target chosen (by default the predicted class), the maps computed
a chunk of images at a time (a cancellation checkpoint between chunks), and optionally each map's deletion and
insertion curves (``attribution.faithfulness``). The classifier's weights are read once per model file from its
ONNX graph. What differs between methods is a trait each declares (``attribution.method.Method``): no method is
named here. Errors are the core's kinds (``service.errors``): ``UnknownMethod`` and ``layers.UnknownLayer`` (not
found), ``layers.NotApplicable`` (not applicable), ``TooMuchWork`` (too large).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import onnx

from service.attribution import METHODS, ClassifierWeights, Limits, Method, classifier_weights
from service.attribution.faithfulness import Faithfulness, faithfulness
from service.attribution.inputs import PREDICTED, Choice, Range
from service.contract import PROBABILITIES
from service.errors import NotFoundError, TooLargeError
from service.graphs.backward_graph import Decisions, RunPolicy, run_policy
from service.runtime.cancellation import checkpoint
from service.runtime.registry import LoadedModel
from service.studies.layers import NotApplicable, UnknownLayer, require_classifier

CLASSES = 10
CHUNK = 64  # images per step: bounds memory (the backward pass of 64 images holds about 40 MB) and is a checkpoint


class UnknownMethod(NotFoundError, LookupError):
    """No such attribution method; the message lists the methods."""


class TooMuchWork(TooLargeError):
    """A batch whose images x evaluations per image is over the limit; refused like a batch of too many images."""

    code = "too_many_images"


@dataclass
class Explanation:
    """The maps of N images: ``values`` the raw maps (N, ...) as the method defines them, ``pixels`` (N, 28, 28)
    the same over the input (as the method's ``maps`` makes them: a layer's maps resized, position maps spread over
    the pixels they cover, input maps as they are), each image's ``targets`` and their probability, the
    ``parameters`` used, and the method's traits an answer shows (``signed``, ``answers_pixels``, its ``extra``
    fields)."""

    method: str
    parameters: dict[str, Any]
    targets: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    values: np.ndarray
    pixels: np.ndarray
    signed: bool
    answers_pixels: bool = False
    faithfulness: Faithfulness | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_weights: dict[str, ClassifierWeights] = {}
_weights_lock = threading.Lock()
# (model file's SHA-256, method) pairs explained at the method's defaults at least once: their weights are read and
# their onnxruntime sessions made, so ``explain_now`` never does either on the caller's thread
_warm: set[tuple[str, str]] = set()


def weights_of(model: LoadedModel) -> ClassifierWeights:
    """The classifier's weights read from its ONNX file (once per file, by SHA-256); NotApplicable for a model
    that is not the paper's classifier (the autoencoder)."""
    require_classifier(model)
    key = model.entry.sha256
    with _weights_lock:
        if key not in _weights:
            try:
                _weights[key] = classifier_weights(onnx.load_from_string(model.onnx_bytes))
            except ValueError as exc:
                raise NotApplicable(f"model {model.name!r} cannot be explained: {exc}") from exc
        return _weights[key]


def method_of(name: str) -> Method:
    """The method called ``name``; UnknownMethod listing them."""
    if name not in METHODS:
        raise UnknownMethod(f"unknown attribution method {name!r}; methods: {', '.join(METHODS)}")
    return METHODS[name]


def parameters_of(method: Method, given: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The method's parameters: ``given`` (None: the default) checked against the method's range, the limit that
    bounds it, and the method's own check against ``limits``.

    Parameters of other methods are ignored. A layer the method does not apply to: UnknownLayer listing its
    layers; another value out of range: NotApplicable saying the range.
    """
    chosen = {}
    for name, spec in method.parameters.items():
        value = given.get(name)
        value = spec.default if value is None else value
        if isinstance(spec, Choice):
            if value not in spec.options and set(spec.options) <= set(method.layers):
                raise UnknownLayer(f"{method.name} has no {name} {value!r}; {name}s: {', '.join(spec.options)}")
        elif spec.limit is not None:
            spec = dataclasses.replace(spec, high=min(spec.high, getattr(limits, spec.limit)))
        try:
            spec.check(name, value)
        except ValueError as exc:
            raise NotApplicable(str(exc)) from exc
        chosen[name] = float(value) if isinstance(spec, Range) and not spec.integer else value
    if method.check_limits is not None:
        try:
            method.check_limits(chosen, limits)
        except ValueError as exc:
            raise NotApplicable(str(exc)) from exc
    return chosen


def check_work(method: Method, parameters: dict[str, Any], images: int, limits: Limits) -> None:
    """TooMuchWork when ``images`` x evaluations per image is over ``limits.max_batch_work``."""
    check_batch_work(method.name, images, method.evaluations(parameters), limits, "fewer steps, samples or squares")


def check_batch_work(what: str, images: int, evaluations: int, limits: Limits, remedy: str) -> None:
    """TooMuchWork when ``images`` x ``evaluations`` per image (of ``what``: a method, at a layer) is over
    ``limits.max_batch_work``, its message ending with the ``remedy`` besides fewer images."""
    work = images * evaluations
    if work > limits.max_batch_work:
        raise TooMuchWork(
            f"{images} images x {evaluations} evaluations each ({what}) is {work:,}; the limit "
            f"is {limits.max_batch_work:,} per request: send fewer images or {remedy}"
        )


def check_model(method: Method, model: LoadedModel, weights: ClassifierWeights) -> None:
    """NotApplicable when the method needs of the network what ``model`` does not have (an activation)."""
    needs = method.requires
    if needs is not None and weights.activation != needs.activation:
        raise NotApplicable(
            f"{method.name} is defined for {needs.label} networks; model {model.name!r} uses {weights.activation}: "
            f"use another method or a {needs.activation} variant"
        )


def _check_target(target: int | None) -> None:
    if target is not None and not (isinstance(target, (int, np.integer)) and 0 <= target < CLASSES):
        raise NotApplicable(f"target must be a class 0-{CLASSES - 1}, got {target!r}")


def _decided(probabilities: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image's target, that class's softmax probability and the predicted class."""
    return targets.astype(np.intp), probabilities[np.arange(len(targets)), targets], probabilities.argmax(axis=1)


def _targets(model: LoadedModel, images: np.ndarray, target: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image's target (``target``, or its predicted class), that class's softmax probability and the
    predicted class, from a forward run of the served model."""
    probabilities = model.run(images, [PROBABILITIES])[PROBABILITIES]
    return _decided(probabilities, probabilities.argmax(axis=1) if target is None else np.full(len(images), target))


def explain(
    model: LoadedModel,
    images: np.ndarray,
    method: str,
    target: int | None = None,
    parameters: dict[str, Any] | None = None,
    limits: Limits = Limits(),
    with_faithfulness: bool = False,
) -> Explanation:
    """The ``method`` maps of ``images`` (N, 28, 28) float32 in [0, 1] for ``target`` (default: each image's
    predicted class) under ``model``, checked against ``limits``; with ``with_faithfulness``, each map's deletion
    and insertion curves and areas."""
    slot = partial(model.gate.slot, model.name)
    return _explain(model, images, method, target, parameters, limits, with_faithfulness, slot)


def explain_now(model: LoadedModel, image: np.ndarray, method: str, limits: Limits = Limits()) -> Explanation | None:
    """``explain`` of one image at the method's defaults for its predicted class, on the calling thread, if that is
    one run that takes no wait: the method costs one pass and finds its own target (no forward run first), it has
    already run at its defaults on this model (its weights read and its session made: the first run, tens to
    hundreds of milliseconds, happens in a worker thread), and an inference slot is free at once (held for the run).
    None otherwise: the caller runs ``explain`` in a worker thread. One such map takes under a millisecond, less than
    handing it to a thread and back."""
    spec = method_of(method)
    defaults = parameters_of(spec, {}, limits)
    if not spec.finds_targets or spec.evaluations(defaults) != 1 or len(np.asarray(image).reshape(-1, 28, 28)) != 1:
        return None
    if (model.entry.sha256, method) not in _warm:
        return None
    held = model.gate.free_slot(model.name)
    if held is None:
        return None
    with held:
        return _explain(model, image, method, None, None, limits, False, nullcontext)


def _explain(
    model: LoadedModel,
    images: np.ndarray,
    method: str,
    target: int | None,
    parameters: dict[str, Any] | None,
    limits: Limits,
    with_faithfulness: bool,
    slot: Callable[[], AbstractContextManager],
) -> Explanation:
    """``explain``, each run holding ``slot()``."""
    spec = method_of(method)
    chosen = parameters_of(spec, parameters or {}, limits)
    images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    if len(images) > 1:
        check_work(spec, chosen, len(images), limits)
    weights = weights_of(model)
    check_model(spec, model, weights)
    _check_target(target)
    # the method's own runs find the probabilities and the predicted class: no forward run first
    decisions = Decisions() if spec.finds_targets else None
    if spec.finds_targets:
        targets = np.full(len(images), PREDICTED if target is None else target, dtype=np.intp)
    else:
        targets, probabilities, predicted = _targets(model, images, target)
    policy = RunPolicy(slot, model.batch_threads, decisions)
    values, pixels = [], []
    for start in range(0, len(images), CHUNK):
        checkpoint()
        x, t = images[start : start + CHUNK], targets[start : start + CHUNK]
        with run_policy(policy):
            raw, over_input = spec.maps(spec.compute(model.run, weights, x, t, **chosen))
        values.append(raw)
        pixels.append(over_input)
    if decisions is not None:
        targets, probabilities, predicted = _decided(
            np.concatenate(decisions.probabilities), np.concatenate(decisions.targets)
        )
    explanation = Explanation(
        method,
        chosen,
        targets,
        probabilities,
        predicted,
        np.concatenate(values).astype(np.float32),
        np.concatenate(pixels).astype(np.float32),
        spec.signed,
        spec.answers_pixels,
    )
    if spec.extra is not None:
        explanation.extra.update(spec.extra(chosen))
    if with_faithfulness:
        checkpoint()
        explanation.faithfulness = faithfulness(model.run, images, targets, explanation.pixels)
    if not parameters:
        _warm.add((model.entry.sha256, method))
    return explanation
