"""Attribution maps of an imported model: every method whose ``any_model`` trait says how it runs on a model it does
not know, in the model's own input layout, size and range.

The gradient methods run the builder's backward graph (``service.graphs.gradient_builder``) over the model's exposed
ONNX copy, seeded at its logits (its probabilities when it has no logits tensor): one backward session per rule
variant and Grad-CAM layer, from the model's budgeted cache (``service.studies.imported_gradients``). The model's
measured backward run (its costliest session's) is the unit a request's cost is counted in before it runs:
images x evaluations (steps, samples) x that cost, bounded by ``GradientLimits``. A
model with a node on the path without a rule gets no runner: every gradient method is a 422 naming the op and the
node, and the forward-only methods (occlusion, ``service.studies.forward_explain``) still serve it.

Methods that find their own targets (``Method.finds_targets``) take the predicted class from the same run that
differentiates it (the graph's ``predicted_from``); the others (whose runs are of changed images) run the model
forward first. The CAMs that need no gradient (``AnyModel.forward``) run the model and its head cut at their layer
instead (``service.studies.cut_heads``), whether or not every op has a rule. No method is named here: the traits
say what each needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from service.attribution import METHODS, Limits, Method
from service.attribution.any_model import GradientRunner, InputRange, one_hot
from service.attribution.faithfulness import faithfulness_over
from service.attribution.placement import resized
from service.errors import TooLargeError
from service.graphs.gradient_builder import Rules
from service.runtime.cancellation import checkpoint
from service.runtime.imported import ImportedLoadedModel
from service.studies.cut_heads import explain_from_layer
from service.studies.explain import Explanation, check_batch_work, check_work, method_of, parameters_of
from service.studies.forward_explain import channels_first, explain_forward, normalised_black, pictures
from service.studies.imported_gradients import (
    IMAGES_PER_RUN,
    GatedRunner,
    GradientLimits,
    NoGradients,
    SessionKey,
    backward_session,
    missing_rule,
    no_gradients_message,
    seeded_tensor,
)
from service.studies.layers import NotApplicable, UnknownLayer


class TooMuchGradientWork(TooLargeError):
    """A request's backward work (images x evaluations x one backward run's cost) over the limit."""

    code = "too_much_work"


def spatial_layers(model: ImportedLoadedModel) -> list[str]:
    """The exposed layers with a spatial map (C, H, W; ONNX's convolutions are NCHW whatever the input's layout,
    and so are the layers exposed at them) of more than one unit along both spatial axes, in graph order."""
    return [
        name
        for name, shape in model.layer_shapes.items()
        if len(shape) == 3 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1
    ]


# a backward session's key -> its runner (by default the model's cached session, ``backward_session``)
RunnerFor = Callable[[SessionKey], GradientRunner]


def session_key(model: ImportedLoadedModel, rules: Rules, layer: str | None) -> SessionKey:
    """The key of the model's attribution session for ``rules`` (and Grad-CAM's ``layer``): from the seeded tensor
    to the input (or ``layer``), also returning the probabilities (and the layer), all-zero seed rows seeding the
    predicted class; NoGradients when the model's path holds an op without a rule."""
    missing = missing_rule(model)
    if missing is not None:
        raise NoGradients(no_gradients_message(model, missing))
    probabilities = model.manifest.probabilities
    return SessionKey(
        seeded_tensor(model),
        layer or model.manifest.input.name,
        rules,
        (probabilities, *([layer] if layer else [])),
        probabilities,
    )


def runner_of(model: ImportedLoadedModel, rules: Rules, layer: str | None, limits: GradientLimits) -> GradientRunner:
    """The model's attribution runner for ``rules`` (and ``layer``) from its budgeted cache (``session_key``)."""
    return backward_session(model, session_key(model, rules, layer), limits).runner


def input_range(model: ImportedLoadedModel) -> InputRange:
    """Where ``model``'s input puts black and one pixel range, shaped to broadcast over one image."""
    steps, channels = model.manifest.preprocessing, model.manifest.input.channels
    shape = (channels, 1, 1) if model.manifest.input.layout == "nchw" else (1, 1, channels)
    std = np.broadcast_to(np.asarray(steps.std, dtype=np.float64), (channels,))
    return InputRange(normalised_black(model).reshape(shape), (1 / std).astype(np.float32).reshape(shape))


def scores_of(model: ImportedLoadedModel, output: str | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """The model's ``output`` (default: its class probabilities) of NCHW images, whatever its layout."""
    layout, output = model.manifest.input.layout, output or model.manifest.probabilities

    def scores(batch: np.ndarray) -> np.ndarray:
        return model.run(batch if layout == "nchw" else batch.transpose(0, 2, 3, 1), [output])[output]

    return scores


def _parameters(
    model: ImportedLoadedModel, spec: Method, given: dict[str, Any], limits: Limits
) -> tuple[dict[str, Any], str | None]:
    """The method's parameters checked as for the shipped models, and the layer its maps are of (None: the
    input); a layer method's ``layer`` is one of the model's spatial layers (default: the last)."""
    if spec.any_model is None or not spec.any_model.layer:
        return parameters_of(spec, given, limits), None
    own = {name: value for name, value in spec.parameters.items() if name != "layer"}
    chosen = parameters_of(dataclasses.replace(spec, parameters=own), given, limits)
    layers = spatial_layers(model)
    if not layers:
        raise NotApplicable(f"{spec.name} needs a spatial layer and model {model.name!r} exposes none")
    layer = given.get("layer") or layers[-1]
    if layer not in layers:
        raise UnknownLayer(f"model {model.name!r} has no spatial layer {layer!r}; spatial layers: {', '.join(layers)}")
    return {**chosen, "layer": layer}, layer


def chosen_parameters(model: ImportedLoadedModel, spec: Method, given: dict[str, Any], limits: Limits) -> dict:
    """The parameters ``spec`` runs with on ``model`` for ``given`` (a forward-run method's fitted to the input's
    size, a layer method's with its layer), checked as ``explain_any`` checks them; runs nothing."""
    if spec.forward_runs is None:
        return _parameters(model, spec, given, limits)[0]
    if spec.forward_runs.fit is None:
        return parameters_of(spec, given, limits)
    size = model.manifest.input
    try:
        return spec.forward_runs.fit(given, size.height, size.width, limits)
    except ValueError as exc:
        raise NotApplicable(f"{exc} (model {model.name!r})") from exc


def _pixels(model: ImportedLoadedModel, values: np.ndarray, layer: str | None) -> np.ndarray:
    """(N, H, W) maps over the input: an input map's channels summed, a layer's map resized bilinearly."""
    spec = model.manifest.input
    if layer is not None:
        return np.stack([resized(v, spec.height, spec.width) for v in values])
    return values.sum(axis=1 if spec.layout == "nchw" else -1)


def _check_target(model: ImportedLoadedModel, target: int | None) -> None:
    classes = len(model.manifest.labels)
    if target is not None and not 0 <= target < classes:
        raise NotApplicable(f"target must be a class 0-{classes - 1} of model {model.name!r}, got {target!r}")


def explain_any(
    model: ImportedLoadedModel,
    images: np.ndarray,
    method: str,
    target: int | None = None,
    parameters: dict[str, Any] | None = None,
    limits: Limits = Limits(),
    gradient_limits: GradientLimits = GradientLimits(),
    with_faithfulness: bool = False,
    runner_for: RunnerFor | None = None,
) -> Explanation:
    """The ``method`` maps of ``images`` (one or a batch of ``model``'s inputs) for ``target`` (default: each
    image's predicted class), checked against ``limits`` and ``gradient_limits``; with ``with_faithfulness``,
    each map's deletion and insertion areas. ``runner_for``: the gradient methods' backward runners (default: the
    model's cached sessions; the sanity checks give runners over a randomised copy of the model)."""
    spec = method_of(method)
    if spec.any_model is None and spec.forward_runs is None:
        raise NotApplicable(
            f"attribution method {method!r} is not served for imported models; use {', '.join(served_methods())}"
        )
    _check_target(model, target)
    given = parameters or {}
    batch = model.as_batch(images)
    if spec.forward_runs is not None:
        result = _forward(model, spec, batch, target, given, limits)
    elif spec.any_model.forward:
        result = _from_layer(model, spec, batch, target, given, limits, gradient_limits)
    else:
        result = _gradients(model, spec, batch, target, given, limits, gradient_limits, runner_for)
    if with_faithfulness:
        checkpoint()
        black = normalised_black(model)
        originals = np.stack([channels_first(model, image) for image in batch])
        result.faithfulness = faithfulness_over(scores_of(model), originals, black, result.targets, result.pixels)
    return result


def _forward(
    model: ImportedLoadedModel, spec: Method, batch: np.ndarray, target: int | None, given: dict, limits: Limits
) -> Explanation:
    """A forward-only method's maps, image by image through ``explain_forward``; a batch's images x the forward
    runs one image costs checked against ``limits.max_batch_work`` first."""
    method = spec.name
    if len(batch) > 1:
        size = model.manifest.input
        runs = spec.forward_runs
        try:
            chosen = (
                runs.fit(given, size.height, size.width, limits) if runs.fit else parameters_of(spec, given, limits)
            )
        except ValueError as exc:
            raise NotApplicable(f"{exc} (model {model.name!r})") from exc
        evaluations = (
            runs.evaluations(chosen, size.height, size.width) if runs.evaluations else spec.evaluations(chosen)
        )
        check_batch_work(method, len(batch), evaluations, limits, "ask for less work per image")
    parts = [explain_forward(model, image, method, target, given, limits) for image in batch]
    first = parts[0]
    return Explanation(
        method,
        first.parameters,
        *(np.concatenate([getattr(p, name) for p in parts]) for name in ("targets", "probabilities", "predicted")),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.pixels for p in parts]),
        first.signed,
        first.answers_pixels,
    )


def _gradients(
    model: ImportedLoadedModel,
    spec: Method,
    batch: np.ndarray,
    target: int | None,
    given: dict[str, Any],
    limits: Limits,
    gradient_limits: GradientLimits,
    runner_for: RunnerFor | None = None,
) -> Explanation:
    """A gradient method's maps over the model's runner of the method's rule variant (``runner_for``'s if given)."""
    chosen, layer = _parameters(model, spec, given, limits)
    if len(batch) > 1:
        check_work(spec, chosen, len(batch), limits)
    if runner_for is None:
        runner = runner_of(model, spec.any_model.rules, layer, gradient_limits)
    else:
        runner = runner_for(session_key(model, spec.any_model.rules, layer))
    evaluations = spec.evaluations(chosen)
    _check_gradient_work(model, spec, len(batch) * evaluations, model.gradient_cost, "backward", gradient_limits)
    probabilities_name, classes = model.manifest.probabilities, len(model.manifest.labels)
    inputs, compute = input_range(model), spec.any_model.compute
    method_parameters = {name: value for name, value in chosen.items() if name != "layer"}
    if layer is not None:
        method_parameters["layer"] = layer
    values, probabilities, targets = [], [], []
    per_part = max(1, IMAGES_PER_RUN // evaluations)  # a part's copies (steps, samples) fill one run at most
    for start in range(0, len(batch), per_part):
        x = batch[start : start + per_part]
        if spec.finds_targets:
            gated = GatedRunner(runner, model, [probabilities_name, runner.built.seed_used])
            seeds = np.zeros((len(x), classes), np.float32) if target is None else one_hot([target] * len(x), classes)
            values.append(compute(gated, x, seeds, inputs, **method_parameters))
            found, used = gated.kept
            probabilities.append(found)
            targets.append(used.argmax(axis=1))
        else:
            found = model.run(x, [probabilities_name])[probabilities_name]
            chosen_targets = found.argmax(axis=1) if target is None else np.full(len(x), target)
            gated = GatedRunner(runner, model, [])
            values.append(compute(gated, x, one_hot(chosen_targets, classes), inputs, **method_parameters))
            probabilities.append(found)
            targets.append(chosen_targets)
    found, chosen_targets = np.concatenate(probabilities), np.concatenate(targets).astype(np.intp)
    raw = np.concatenate(values).astype(np.float32)
    pixels = _pixels(model, raw, layer).astype(np.float32)
    return Explanation(
        spec.name,
        chosen,
        chosen_targets,
        found[np.arange(len(found)), chosen_targets].astype(np.float32),
        found.argmax(axis=1),
        raw,
        pixels,
        spec.signed,
        spec.answers_pixels or raw.shape[1:] != pixels.shape[1:],
    )


def _check_gradient_work(
    model: ImportedLoadedModel, spec: Method, runs: int, unit: int, kind: str, limits: GradientLimits
) -> None:
    """TooMuchGradientWork when ``runs`` (images x evaluations) x ``unit`` (one run's units) is over the limit."""
    work = runs * unit
    if work > limits.max_work:
        raise TooMuchGradientWork(
            f"{runs:,} evaluations (images x evaluations per image, {spec.name}) x {unit} units per {kind} run "
            f"of model {model.name!r} is {work:,} units; CONVLENS_MAX_GRADIENT_WORK is {limits.max_work:,}: send "
            "fewer images, fewer steps or samples, or choose a layer with fewer channels"
        )


def _from_layer(
    model: ImportedLoadedModel,
    spec: Method,
    batch: np.ndarray,
    target: int | None,
    given: dict[str, Any],
    limits: Limits,
    gradient_limits: GradientLimits,
) -> Explanation:
    """A forward-only CAM's maps (``AnyModel.forward``): its runs per image (from the layer's channels) x the
    images checked against ``limits.max_batch_work``, and x one forward run's units (a head's run counts as a
    whole forward run) against ``gradient_limits``, before any run."""
    chosen, layer = _parameters(model, spec, given, limits)
    channels = model.layer_shapes[layer][0] or 1
    evaluations = spec.any_model.evaluations(channels) if spec.any_model.evaluations else 1
    what = f"{spec.name} at {layer!r}, {channels} channels"
    check_batch_work(what, len(batch), evaluations, limits, "choose a layer with fewer channels")
    _check_gradient_work(model, spec, len(batch) * evaluations, model.cost, "forward", gradient_limits)
    return explain_from_layer(model, spec, batch, target, chosen, layer, gradient_limits.free_bytes)


def seen(model: ImportedLoadedModel, image: np.ndarray) -> np.ndarray:
    """One image of ``model``'s input as the model saw it, in [0, 1]: the normalisation undone, (H, W) grey for a
    one-channel model, (H, W, 3) colour for a three-channel one (what a heat map is drawn over)."""
    return pictures(model, channels_first(model, image)[None])[0]


def served_methods() -> list[str]:
    """The attribution methods an imported model can be asked for: those with gradients or forward runs."""
    return [name for name, m in METHODS.items() if m.any_model is not None or m.forward_runs is not None]


def gradient_methods_of(model: ImportedLoadedModel) -> tuple[list[str], str | None]:
    """The methods ``model`` serves through ``Method.any_model`` and, when it serves no gradient one, why (the op
    and node without a rule); the forward-only ones serve it either way."""
    missing = missing_rule(model)
    names = [
        name for name, m in METHODS.items() if m.any_model is not None and (missing is None or m.any_model.forward)
    ]
    return (names, None) if missing is None else (names, no_gradients_message(model, missing))
