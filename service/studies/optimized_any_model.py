"""What an imported model's filters and classes want to see, computed on request: gradient ascent on the input
(Erhan et al. 2009; Olah et al. 2017) through the gradient builder's exact backward graph.

The rule is the shipped classifier's (``training.optimize``), kept where it applies to any model: the input is
``(sigmoid(v) - mean) / std``, so its pixels ``sigmoid(v)`` stay in [0, 1] and the input in the range the model's
normalisation maps [0, 1] to; Adam (learning rate LEARNING_RATE, betas 0.9 and 0.999, epsilon 1e-8, PyTorch's
form) maximises a filter's mean activation (a dense layer's unit: its value) or a class's logit; while exploring,
each step sees the pixels rolled by a random jitter (JITTER_PER_28 pixels per 28 of the input's shorter side) and
every BLUR_EVERY steps the pixels are blurred 3x3 (edges repeated), and the last SETTLE_SHARE of the steps settle
without jitter or blur. No L2 decay, as in the shipped rule (Adam scales a small L2 gradient up to full steps
where the objective's is zero). Choices against the shipped rule: one start (``v`` from a normal of spread
START_SPREAD) rather than the best of two, and no leaky-ReLU surrogate (the builder differentiates the model's own
graph).

Reproducible: ``numpy.random.default_rng(seed)`` draws the start ``normal(0, START_SPREAD, (N, C, H, W))`` as
float32, then the jitter ``integers(-J, J + 1, (steps, 2))`` (rows, columns; zero in the settling steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.errors import NotApplicableError, TooLargeError
from service.runtime.cancellation import checkpoint
from service.runtime.imported import ImportedLoadedModel
from service.studies.imported_gradients import (
    BackwardSession,
    GradientLimits,
    SessionKey,
    backward_session,
    layer_tensor,
)

DEFAULT_STEPS = 128
LEARNING_RATE = 0.2
BETAS = (0.9, 0.999)
EPSILON = 1e-8
JITTER_PER_28 = 2
BLUR_EVERY = 8
SETTLE_SHARE = 1 / 6
START_SPREAD = 0.5
EDGE = 1e-4  # blurred pixels are clipped to [EDGE, 1 - EDGE] before their logit
METHOD = (
    f"gradient ascent on sigmoid(v) (pixels in [0, 1], normalised as the model's preprocessing), Adam learning rate "
    f"{LEARNING_RATE}, jitter and a 3x3 blur every {BLUR_EVERY} steps while exploring, the last "
    f"{SETTLE_SHARE:.0%} of the steps without"
)


class OptimizeRefused(NotApplicableError, ValueError):
    """An ascent the model or the request cannot have: a parameter out of range, a model without logits."""


class OptimizeTooCostly(TooLargeError, ValueError):
    """An ascent whose measured cost is over the limit."""


@dataclass(frozen=True)
class Objective:
    """What an ascent maximises: Σ seed · ``seeded`` (one seed row per input)."""

    layer: str
    seeded: str
    seeds: np.ndarray


@dataclass(frozen=True)
class Ascent:
    """The optimized inputs' pixels (N, C, H, W) in [0, 1], and the objective (N,) at them and at the start."""

    pixels: np.ndarray
    objective: np.ndarray
    start_objective: np.ndarray


def filter_objective(model: ImportedLoadedModel, layer: str, filters: list[int]) -> Objective:
    """The mean activation of each of ``filters`` of ``layer`` (filters on the layer's first axis)."""
    tensor = layer_tensor(model, layer)
    shape = [int(size) for size in model.layer_shapes[layer]]
    bad = [index for index in filters if not 0 <= index < shape[0]]
    if bad:
        raise OptimizeRefused(f"filter {bad[0]} is out of range: layer {layer!r} has filters 0-{shape[0] - 1}")
    seeds = np.zeros((len(filters), *shape), np.float32)
    for row, index in enumerate(filters):
        seeds[row, index] = 1 / math.prod(shape[1:])
    return Objective(layer, tensor, seeds)


def class_objective(model: ImportedLoadedModel, index: int) -> Objective:
    """The logit of class ``index``; OptimizeRefused for a model whose graph holds no logits."""
    classes = len(model.manifest.labels)
    if not 0 <= index < classes:
        raise OptimizeRefused(f"class {index} is out of range: model {model.name!r} has classes 0-{classes - 1}")
    if model.manifest.logits is None:
        raise OptimizeRefused(
            f"model {model.name!r} has no logits output: a class's optimized input maximises its logit"
        )
    seeds = np.zeros((1, classes), np.float32)
    seeds[0, index] = 1
    return Objective(model.manifest.logits, model.manifest.logits, seeds)


def jitter_of(model: ImportedLoadedModel) -> int:
    """The largest jitter in pixels: JITTER_PER_28 per 28 pixels of the input's shorter side (2 on 28 x 28)."""
    spec = model.manifest.input
    return max(1, round(JITTER_PER_28 * min(spec.height, spec.width) / 28))


def checked_session(
    model: ImportedLoadedModel,
    objective: Objective,
    steps: int,
    max_steps: int,
    max_seconds: float,
    limits: GradientLimits = GradientLimits(),
) -> BackwardSession:
    """The backward session of ``objective`` from the model's budgeted cache (within ``limits``), once ``steps``
    is within 1..``max_steps`` and the ascent's cost (steps x inputs x the session's measured milliseconds per
    image) within ``max_seconds``."""
    if not 1 <= steps <= max_steps:
        raise OptimizeRefused(f"steps must be between 1 and {max_steps} (CONVLENS_MAX_OPTIMIZE_STEPS), got {steps}")
    session = backward_session(model, SessionKey(objective.seeded, model.manifest.input.name, "gradient"), limits)
    count = len(objective.seeds)
    seconds = steps * count * session.ms_per_image / 1000
    if seconds > max_seconds:
        raise OptimizeTooCostly(
            f"{steps} steps x {count} inputs x {session.ms_per_image:.3g} ms per backward run of {model.name!r} "
            f"would take about {seconds:.3g} s, over CONVLENS_MAX_OPTIMIZE_SECONDS={max_seconds:g}; ask for fewer "
            "steps (or one filter rather than the layer)"
        )
    return session


def _normalisation(model: ImportedLoadedModel) -> tuple[np.ndarray, np.ndarray]:
    steps, channels = model.manifest.preprocessing, model.manifest.input.channels
    mean = np.broadcast_to(np.asarray(steps.mean, np.float32), (channels,)).reshape(1, channels, 1, 1)
    std = np.broadcast_to(np.asarray(steps.std, np.float32), (channels,)).reshape(1, channels, 1, 1)
    return mean, std


def _layout(model: ImportedLoadedModel, nchw: np.ndarray) -> np.ndarray:
    """NCHW inputs in the model's layout."""
    return nchw if model.manifest.input.layout == "nchw" else np.ascontiguousarray(nchw.transpose(0, 2, 3, 1))


def _from_layout(model: ImportedLoadedModel, batch: np.ndarray) -> np.ndarray:
    return batch if model.manifest.input.layout == "nchw" else np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-v))).astype(np.float32)


def _blurred(pixels: np.ndarray) -> np.ndarray:
    """A 3x3 box blur of (N, C, H, W) with the edge rows and columns repeated."""
    padded = np.pad(pixels, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    height, width = pixels.shape[2:]
    total = sum(padded[:, :, a : a + height, b : b + width] for a in range(3) for b in range(3))
    return (total / 9).astype(np.float32)


def objective_values(model: ImportedLoadedModel, objective: Objective, inputs: np.ndarray) -> np.ndarray:
    """Σ seed · the objective's tensor for each input (NCHW, normalised), by the model's forward run."""
    values = model.run(_layout(model, inputs), [objective.layer])[objective.layer]
    return (values * objective.seeds).reshape(len(inputs), -1).sum(axis=1)


def ascend(model: ImportedLoadedModel, objective: Objective, session: BackwardSession, steps: int, seed: int) -> Ascent:
    """Gradient ascent of ``objective`` from ``seed``'s start for ``steps`` steps (the module's rule)."""
    spec = model.manifest.input
    count = len(objective.seeds)
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, START_SPREAD, (count, spec.channels, spec.height, spec.width)).astype(np.float32)
    jitter = jitter_of(model)
    shifts = rng.integers(-jitter, jitter + 1, (steps, 2))
    explore = steps - round(steps * SETTLE_SHARE)
    shifts[explore:] = 0
    mean, std = _normalisation(model)
    start = (_sigmoid(v) - mean) / std
    first, second = np.zeros_like(v), np.zeros_like(v)
    beta1, beta2 = BETAS
    for step in range(steps):
        checkpoint()
        pixels = _sigmoid(v)
        dy, dx = (int(shift) for shift in shifts[step])
        shown = (np.roll(pixels, (dy, dx), axis=(2, 3)) - mean) / std
        grad = _from_layout(model, session.gradient(model, _layout(model, shown), objective.seeds))
        grad_v = np.roll(grad, (-dy, -dx), axis=(2, 3)) / std * pixels * (1 - pixels)
        first = beta1 * first + (1 - beta1) * grad_v
        second = beta2 * second + (1 - beta2) * grad_v * grad_v
        t = step + 1
        denominator = np.sqrt(second) / np.float32(math.sqrt(1 - beta2**t)) + np.float32(EPSILON)
        v = (v + np.float32(LEARNING_RATE / (1 - beta1**t)) * first / denominator).astype(np.float32)
        if step < explore and step % BLUR_EVERY == BLUR_EVERY - 1:
            smoothed = np.clip(_blurred(_sigmoid(v)), EDGE, 1 - EDGE)
            v = np.log(smoothed / (1 - smoothed)).astype(np.float32)
    pixels = _sigmoid(v)
    final = (pixels - mean) / std
    return Ascent(pixels, objective_values(model, objective, final), objective_values(model, objective, start))
