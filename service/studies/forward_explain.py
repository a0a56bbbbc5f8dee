"""Attribution maps of an imported model: the methods that need only forward passes (occlusion), run through the
model's own forward run in its own input size, channels and layout.

The squares are filled with the model's normalised black, ``(0 - mean) / std`` per channel (on an MNIST-style
model, the background's 0, as for the shipped classifier). The default square and step keep the shipped 4 and 2
pixels over 28 in proportion to the input's shorter side (32 and 16 at 224 x 224).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.attribution import METHODS, Limits
from service.attribution.forward_occlusion import default_square, forward_occlusion, square_count
from service.runtime.imported import ImportedLoadedModel
from service.studies.explain import Explanation
from service.studies.layers import NotApplicable


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


def checked_square(model: ImportedLoadedModel, parameters: dict[str, Any], limits: Limits) -> tuple[int, int]:
    spec = model.manifest.input
    default_patch, default_stride = default_square(spec.height, spec.width)
    side = min(spec.height, spec.width)
    chosen = {"patch": parameters.get("patch") or default_patch, "stride": parameters.get("stride") or default_stride}
    for name, value in chosen.items():
        if not 1 <= value <= side:
            raise NotApplicable(f"{name} must be an integer in [1, {side}] for model {model.name!r}, got {value!r}")
    count = square_count(spec.height, spec.width, chosen["patch"], chosen["stride"])
    if count > limits.max_squares:
        raise NotApplicable(
            f"patch {chosen['patch']} and stride {chosen['stride']} make {count} squares on {spec.height}x"
            f"{spec.width}; at most {limits.max_squares} per image: raise the stride or the patch"
        )
    return chosen["patch"], chosen["stride"]


def explain_forward(
    model: ImportedLoadedModel,
    image: np.ndarray,
    method: str,
    target: int | None = None,
    parameters: dict[str, Any] | None = None,
    limits: Limits = Limits(),
) -> Explanation:
    """The ``method`` map (a forward-only one) of one image in ``model``'s input for ``target`` (default: the
    predicted class), checked against ``limits``."""
    served = METHODS[method].any_model
    if served is None or served.compute is not None:
        raise NotApplicable(f"attribution method {method!r} is not forward-only; use occlusion")
    classes = len(model.manifest.labels)
    if target is not None and not 0 <= target < classes:
        raise NotApplicable(f"target must be a class 0-{classes - 1} of model {model.name!r}, got {target!r}")
    patch, stride = checked_square(model, parameters or {}, limits)
    layout, output = model.manifest.input.layout, model.manifest.probabilities

    def probabilities(batch: np.ndarray) -> np.ndarray:
        inputs = batch if layout == "nchw" else batch.transpose(0, 2, 3, 1)
        return model.run(inputs, [output])[output]

    result = forward_occlusion(
        probabilities, channels_first(model, image), normalised_black(model), target, patch, stride
    )
    return Explanation(
        method,
        {"patch": patch, "stride": stride},
        np.array([result.target]),
        np.array([result.probability], dtype=np.float32),
        np.array([result.predicted]),
        result.grid[None],
        result.pixels[None],
        METHODS[method].signed,
        METHODS[method].answers_pixels,
    )
