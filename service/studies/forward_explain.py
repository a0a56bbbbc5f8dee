"""Attribution maps of an imported model: the methods whose traits say how they explain any model from its forward
runs alone (``Method.forward_runs``: occlusion, feature ablation, KernelSHAP, RISE), run through the model's own
forward run in its own input size, channels and layout.

What a method removes takes the model's normalised black, ``(0 - mean) / std`` per channel (on an MNIST-style
model, the background's 0, as for the shipped classifier). A method whose parameters depend on the input's size
fits them (occlusion's default square and step keep the shipped 4 and 2 pixels over 28 in proportion to the
input's shorter side: 32 and 16 at 224 x 224); the others' are checked against their own ranges and the limits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.attribution import METHODS, Limits
from service.runtime.imported import ImportedLoadedModel
from service.studies.explain import Explanation, method_of, parameters_of
from service.studies.layers import NotApplicable

FORWARD_METHODS = tuple(name for name, method in METHODS.items() if method.forward_runs is not None)


def channels_first(model: ImportedLoadedModel, image: np.ndarray) -> np.ndarray:
    """One image of ``model``'s input as (C, H, W)."""
    single = model.as_batch(image)[0]
    return single if model.manifest.input.layout == "nchw" else np.ascontiguousarray(single.transpose(2, 0, 1))


def normalised_black(model: ImportedLoadedModel) -> np.ndarray:
    """What a black pixel becomes in ``model``'s input, per channel: ``(0 - mean) / std``."""
    spec, steps = model.manifest.input, model.manifest.preprocessing
    mean = np.broadcast_to(np.asarray(steps.mean, dtype=np.float64), (spec.channels,))
    std = np.broadcast_to(np.asarray(steps.std, dtype=np.float64), (spec.channels,))
    return (-mean / std).astype(np.float32)


def pictures(model: ImportedLoadedModel, inputs: np.ndarray) -> np.ndarray:
    """Inputs (N, C, H, W) of ``model`` as pictures in [0, 1], the normalisation undone: (N, H, W, 3) for a
    three-channel model, else (N, H, W) grey (the channels averaged)."""
    steps, channels = model.manifest.preprocessing, model.manifest.input.channels
    mean = np.broadcast_to(np.asarray(steps.mean, np.float32), (channels,))[:, None, None]
    std = np.broadcast_to(np.asarray(steps.std, np.float32), (channels,))[:, None, None]
    shown = np.clip(inputs * std + mean, 0, 1)
    return shown.transpose(0, 2, 3, 1) if channels == 3 else shown.mean(axis=1)


def explain_forward(
    model: ImportedLoadedModel,
    image: np.ndarray,
    method: str,
    target: int | None = None,
    parameters: dict[str, Any] | None = None,
    limits: Limits = Limits(),
) -> Explanation:
    """The ``method`` map (one with forward runs) of one image in ``model``'s input for ``target`` (default: the
    predicted class), checked against ``limits``."""
    spec = method_of(method)
    if spec.forward_runs is None:
        raise NotApplicable(
            f"attribution method {method!r} is not served for imported models; use {', '.join(FORWARD_METHODS)}"
        )
    classes = len(model.manifest.labels)
    if target is not None and not 0 <= target < classes:
        raise NotApplicable(f"target must be a class 0-{classes - 1} of model {model.name!r}, got {target!r}")
    spec_input = model.manifest.input
    given = parameters or {}
    if spec.forward_runs.fit is None:
        chosen = parameters_of(spec, given, limits)
    else:
        try:
            chosen = spec.forward_runs.fit(given, spec_input.height, spec_input.width, limits)
        except ValueError as exc:
            raise NotApplicable(f"{exc} (model {model.name!r})") from exc
    layout, output = spec_input.layout, model.manifest.probabilities

    def probabilities(batch: np.ndarray) -> np.ndarray:
        inputs = batch if layout == "nchw" else batch.transpose(0, 2, 3, 1)
        return model.run(inputs, [output])[output]

    image = channels_first(model, image)
    base = probabilities(image[None])[0]
    chosen_target = int(base.argmax()) if target is None else target
    values, pixels = spec.forward_runs.compute(
        probabilities, image[None], np.array([chosen_target]), normalised_black(model), **chosen
    )
    explanation = Explanation(
        method,
        chosen,
        np.array([chosen_target]),
        np.array([base[chosen_target]], dtype=np.float32),
        np.array([int(base.argmax())]),
        np.asarray(values, dtype=np.float32),
        np.asarray(pixels, dtype=np.float32),
        spec.signed,
        spec.answers_pixels,
    )
    if spec.extra is not None and spec.forward_runs.fit is None:
        explanation.extra.update(spec.extra(chosen))
    return explanation
