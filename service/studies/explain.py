"""Attribution maps of a served classifier: "why the network decides" (``service.attribution`` does the math).

This is the step the HTTP wing and ``analyze`` share: the method looked up, its parameters checked against the
method's own ranges and the caller's limits, the target chosen (by default the predicted class), the maps computed
a chunk of images at a time (a cancellation checkpoint between chunks), and optionally each map's deletion and
insertion curves (``attribution.faithfulness``). The classifier's weights are read once per model file from its
ONNX graph. Errors are the core's kinds (``service.errors``): ``UnknownMethod`` and ``layers.UnknownLayer`` (not
found), ``layers.NotApplicable`` (not applicable), ``TooMuchWork`` (too large).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import onnx

from service.attribution import METHODS, ClassifierWeights, GuidedBackpropNeedsRelu, Method, classifier_weights
from service.attribution.faithfulness import Faithfulness, faithfulness
from service.attribution.inputs import PREDICTED, Choice, Range
from service.attribution.occlusion import square_starts
from service.contract import PROBABILITIES
from service.errors import NotFoundError, TooLargeError
from service.graphs.backward_graph import Decisions, RunPolicy, run_policy
from service.pictures.heatmap import to_input_size
from service.runtime.cancellation import checkpoint
from service.runtime.registry import LoadedModel
from service.studies.layers import NotApplicable, UnknownLayer, require_classifier

CLASSES = 10
CHUNK = 64  # images per step: bounds memory (the backward pass of 64 images holds about 40 MB) and is a checkpoint
SIGNED = {name: name != "grad-cam" for name in METHODS}  # Grad-CAM is ReLU(...) >= 0; every other map is signed
# The parameters a request may set, each method's own (``fill`` stays the MNIST background for the API).
REQUEST_PARAMETERS = ("steps", "samples", "noise", "seed", "layer", "patch", "stride")


class UnknownMethod(NotFoundError, LookupError):
    """No such attribution method; the message lists the methods."""


class TooMuchWork(TooLargeError):
    """A batch whose images x evaluations per image is over the limit; refused like a batch of too many images."""

    code = "too_many_images"


@dataclass(frozen=True)
class Limits:
    """The most work one request may ask for: integrated-gradients steps, smoothgrad samples and occlusion squares
    per image, and in a batch images x evaluations (one evaluation: one image through forward and backward)."""

    max_steps: int = 64
    max_samples: int = 50
    max_squares: int = 196
    max_batch_work: int = 10_000


@dataclass
class Explanation:
    """The maps of N images: ``values`` the raw maps (N, ...) as the method defines them, ``pixels`` (N, 28, 28)
    the same over the input (Grad-CAM resized bilinearly, occlusion's per-pixel mean of the covering squares,
    the others as they are), each image's ``targets`` and their probability, the ``parameters`` used."""

    method: str
    parameters: dict[str, Any]
    targets: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    values: np.ndarray
    pixels: np.ndarray
    signed: bool
    faithfulness: Faithfulness | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_weights: dict[str, ClassifierWeights] = {}
_weights_lock = threading.Lock()


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


def squares(patch: int, stride: int) -> int:
    """How many square positions occlusion evaluates for ``patch`` and ``stride``."""
    return len(square_starts(patch, stride)) ** 2


def parameters_of(method: Method, given: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """The method's parameters: ``given`` (None: the default) checked against the method's range and ``limits``.

    Parameters of other methods are ignored. Unknown ``layer``: UnknownLayer listing the layers; out of range:
    NotApplicable saying the range.
    """
    chosen = {}
    for name, spec in method.parameters.items():
        value = given.get(name)
        value = spec.default if value is None else value
        if isinstance(spec, Choice):
            if value not in spec.options:
                raise UnknownLayer(f"grad-cam has no layer {value!r}; layers: {', '.join(spec.options)}")
        else:
            high = {"steps": limits.max_steps, "samples": limits.max_samples}.get(name, spec.high)
            bounded = Range(spec.default, spec.low, min(spec.high, high), spec.integer)
            try:
                bounded.check(name, value)
            except ValueError as exc:
                raise NotApplicable(str(exc)) from exc
            value = value if spec.integer else float(value)
        chosen[name] = value
    if method.name == "occlusion":
        count = squares(chosen["patch"], chosen["stride"])
        if count > limits.max_squares:
            raise NotApplicable(
                f"patch {chosen['patch']} and stride {chosen['stride']} make {count} squares; at most "
                f"{limits.max_squares} per image: raise the stride or the patch"
            )
    return chosen


def evaluations(method: str, parameters: dict[str, Any]) -> int:
    """Forward (and backward) passes one image costs: steps, samples, squares + 1, or 1."""
    if method == "integrated-gradients":
        return parameters["steps"]
    if method == "smoothgrad":
        return parameters["samples"]
    if method == "occlusion":
        return squares(parameters["patch"], parameters["stride"]) + 1
    return 1


def check_work(method: str, parameters: dict[str, Any], images: int, limits: Limits) -> None:
    """TooMuchWork when ``images`` x evaluations per image is over ``limits.max_batch_work``."""
    work = images * evaluations(method, parameters)
    if work > limits.max_batch_work:
        raise TooMuchWork(
            f"{images} images x {evaluations(method, parameters)} evaluations each ({method}) is {work:,}; the limit "
            f"is {limits.max_batch_work:,} per request: send fewer images or fewer steps, samples or squares"
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
    spec = method_of(method)
    chosen = parameters_of(spec, parameters or {}, limits)
    images = np.asarray(images, dtype=np.float32).reshape(-1, 28, 28)
    if len(images) > 1:
        check_work(method, chosen, len(images), limits)
    weights = weights_of(model)
    if method == "guided-backprop" and weights.activation != "relu":
        raise NotApplicable(
            f"guided-backprop is defined for ReLU networks; model {model.name!r} uses {weights.activation}: "
            "use another method or a relu variant"
        )
    _check_target(target)
    # the method's own runs find the probabilities and the predicted class: no forward run first
    decisions = Decisions() if spec.finds_targets else None
    if spec.finds_targets:
        targets = np.full(len(images), PREDICTED if target is None else target, dtype=np.intp)
    else:
        targets, probabilities, predicted = _targets(model, images, target)
    policy = RunPolicy(partial(model.gate.slot, model.name), model.batch_threads, decisions)
    values, pixels = [], []
    for start in range(0, len(images), CHUNK):
        checkpoint()
        x, t = images[start : start + CHUNK], targets[start : start + CHUNK]
        try:
            with run_policy(policy):
                result = spec.compute(model.run, weights, x, t, **chosen)
        except GuidedBackpropNeedsRelu as exc:  # also checked above; kept for any other path to it
            raise NotApplicable(str(exc)) from exc
        if method == "occlusion":
            values.append(result.grid)
            pixels.append(result.pixels)
        else:
            values.append(result)
            pixels.append(result if result.shape[1:] == (28, 28) else np.stack([to_input_size(m) for m in result]))
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
        SIGNED[method],
    )
    if method == "occlusion":
        explanation.extra["starts"] = square_starts(chosen["patch"], chosen["stride"])
    if with_faithfulness:
        checkpoint()
        explanation.faithfulness = faithfulness(model.run, images, targets, explanation.pixels)
    return explanation
