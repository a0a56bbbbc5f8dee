"""Feature invariance (Zeiler and Fergus 2014, section 4.1, figure 5): how the classifier's layers and answer move as
one digit is shifted, rotated or scaled.

Every amount of a transform is applied to the network's 28x28 input (pure numpy: whole-pixel shifts; bilinear
rotation and scaling about the image centre; everything outside the image is 0), and the original and all
transformed inputs go through the model in one ``LoadedModel.run`` (the transformed ones alone when an amount is the
identity: that one is the original). For each amount: the probability of the tracked
class, the predicted class, and per layer the Euclidean distance between the transformed input's layer vector and
the original's.

Conventions (image coordinates, x to the right, y down): positive ``shift-x`` moves the digit right, positive
``shift-y`` moves it down, positive ``rotate`` turns it counter-clockwise as seen on screen, ``scale`` above 1
enlarges it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.contract import PROBABILITIES
from service.errors import NotFoundError
from service.runtime.registry import LoadedModel
from service.studies.layers import NotApplicable, layer_shape, require_classifier

SIDE = 28
LAYERS = ("conv1", "conv2", "pool", "dense1")
MAX_STEPS = 64


@dataclass(frozen=True)
class Transform:
    """A transform's unit, default range and the largest range it accepts."""

    unit: str
    default: tuple[float, float]
    limits: tuple[float, float]


TRANSFORMS = {
    "shift-x": Transform("px", (-8.0, 8.0), (-14.0, 14.0)),
    "shift-y": Transform("px", (-8.0, 8.0), (-14.0, 14.0)),
    "rotate": Transform("degrees", (-60.0, 60.0), (-180.0, 180.0)),
    "scale": Transform("factor", (0.5, 1.5), (0.25, 3.0)),
}
IDENTITY = {"shift-x": 0.0, "shift-y": 0.0, "rotate": 0.0, "scale": 1.0}  # the amount that leaves the image as it is
DEFAULT_STEPS = 17


class UnknownTransform(NotFoundError, LookupError):
    """No such transform; the message lists the transforms there are."""


def transform_spec(name: str) -> Transform:
    """The transform called ``name``; UnknownTransform listing them otherwise."""
    if name not in TRANSFORMS:
        raise UnknownTransform(f"unknown transform {name!r}; transforms: {', '.join(TRANSFORMS)}")
    return TRANSFORMS[name]


def amounts(name: str, start: float | None = None, stop: float | None = None, steps: int = DEFAULT_STEPS) -> np.ndarray:
    """``steps`` evenly spaced amounts of transform ``name`` from ``start`` to ``stop`` (defaults: its default range),
    shifts rounded to whole pixels; NotApplicable saying the allowed range when they are outside it."""
    spec = transform_spec(name)
    start = spec.default[0] if start is None else start
    stop = spec.default[1] if stop is None else stop
    low, high = spec.limits
    if not (low <= start <= high and low <= stop <= high):
        raise NotApplicable(
            f"{name} accepts amounts from {low:g} to {high:g} {spec.unit}, got from={start:g} to={stop:g}"
        )
    if not 2 <= steps <= MAX_STEPS:
        raise NotApplicable(f"steps must be between 2 and {MAX_STEPS}, got {steps}")
    values = np.linspace(start, stop, steps)
    return np.round(values) if spec.unit == "px" else values


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Bilinear samples of ``image`` (H, W) at the (fractional) pixel coordinates ``x``, ``y``; ``fill`` outside.

    The four neighbours are gathered by flat index from the image with a 1-px ``fill`` border (anything further out
    reads the border too): one gather per neighbour over every amount at once, float32 weights. At whole-pixel
    coordinates the weights are 1 and 0, so a sample is the pixel itself, exactly.
    """
    height, width = np.shape(image)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    x0, y0 = x0.astype(np.intp), y0.astype(np.intp)
    border = np.pad(np.asarray(image, np.float32), 1, constant_values=np.float32(fill)).ravel()
    stride = width + 2
    left, right = np.clip(x0 + 1, 0, width + 1), np.clip(x0 + 2, 0, width + 1)
    above, below = np.clip(y0 + 1, 0, height + 1) * stride, np.clip(y0 + 2, 0, height + 1) * stride
    gx = 1 - fx
    top = gx * border[above + left] + fx * border[above + right]
    bottom = gx * border[below + left] + fx * border[below + right]
    return (1 - fy) * top + fy * bottom


def transformed(image: np.ndarray, name: str, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """``image`` (H, W; the shipped digit's 28x28) under each amount of transform ``name`` about its centre, ``fill``
    where the transformed image reads outside it: (len(values), H, W) float32."""
    transform_spec(name)
    image = np.asarray(image, np.float32)
    image = image.reshape(SIDE, SIDE) if image.ndim != 2 else image
    height, width = image.shape
    values = np.asarray(values, np.float64)[:, None, None]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    centre_x, centre_y = (width - 1) / 2, (height - 1) / 2
    dx, dy = xs - centre_x, ys - centre_y
    if name == "shift-x":
        x, y = xs - values, ys + 0 * values
    elif name == "shift-y":
        x, y = xs + 0 * values, ys - values
    elif name == "rotate":
        # each output pixel samples the input rotated back: clockwise on screen by the amount
        theta = np.deg2rad(values)
        x = centre_x + dx * np.cos(theta) - dy * np.sin(theta)
        y = centre_y + dx * np.sin(theta) + dy * np.cos(theta)
    else:
        x, y = centre_x + dx / values, centre_y + dy / values
    return _sample(image, x, y, fill)


@dataclass(frozen=True)
class Invariance:
    """One digit under one transform: per amount the tracked class's probability, the predicted class, each layer's
    distance from the original, and the transformed inputs themselves."""

    transform: str
    target: int
    amounts: np.ndarray
    probability: np.ndarray
    predicted: np.ndarray
    distance: dict[str, np.ndarray]
    inputs: np.ndarray


def layer_distances(outputs: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer, the Euclidean distance of each row of ``outputs`` from ``reference``'s (one image) layer vector."""
    distances = {}
    for layer in LAYERS:
        difference = outputs[layer].reshape(len(outputs[layer]), -1) - reference[layer].reshape(1, -1)
        distances[layer] = np.sqrt(np.einsum("ij,ij->i", difference, difference))
    return distances


def _distances_in_place(outputs: dict[str, np.ndarray], row: int) -> dict[str, np.ndarray]:
    """Per layer, the distance of every row of ``outputs`` from row ``row``, as ``layer_distances``, subtracting in
    place (the run's own arrays, not used afterwards): no 5 MB temporaries for conv1 and conv2."""
    distances = {}
    for layer in LAYERS:
        flat = outputs[layer].reshape(len(outputs[layer]), -1)
        if not flat.flags.writeable:
            flat = flat.copy()
        flat -= flat[row].copy()
        distances[layer] = np.sqrt(np.einsum("ij,ij->i", flat, flat))
    return distances


def invariance(
    model: LoadedModel,
    digit: np.ndarray,
    name: str,
    start: float | None = None,
    stop: float | None = None,
    steps: int = DEFAULT_STEPS,
    target: int | None = None,
) -> Invariance:
    """``digit`` (28, 28) in [0, 1] under ``steps`` amounts of transform ``name``, as ONE batch through ``model``.

    ``target`` is the class to track (default: the class predicted for the untransformed digit).
    """
    require_classifier(model)
    for layer in LAYERS:
        layer_shape(model, layer)
    classes = layer_shape(model, PROBABILITIES)[-1]
    if target is not None and not 0 <= target < classes:
        raise NotApplicable(f"target must be a class 0-{classes - 1}, got {target}")
    values = amounts(name, start, stop, steps)
    inputs = transformed(digit, name, values)
    unchanged = np.flatnonzero(values == IDENTITY[name])
    if unchanged.size:  # the identity amount is the original itself (exactly: integer coordinates, weights 0 and 1)
        row, moved = int(unchanged[0]), slice(None)
        batch = inputs
    else:
        row, moved = 0, slice(1, None)
        batch = np.concatenate([np.asarray(digit, np.float32).reshape(1, SIDE, SIDE), inputs])
    outputs = model.run(batch, [*LAYERS, PROBABILITIES])
    probabilities = outputs[PROBABILITIES]
    tracked = int(probabilities[row].argmax()) if target is None else target
    return Invariance(
        transform=name,
        target=tracked,
        amounts=values,
        probability=probabilities[moved, tracked],
        predicted=probabilities[moved].argmax(axis=1),
        distance={layer: values[moved] for layer, values in _distances_in_place(outputs, row).items()},
        inputs=inputs,
    )
