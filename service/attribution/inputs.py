"""What every attribution method checks first: the batch of images and targets, and each parameter's range."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from service.graphs.classifier_weights import CLASSES, IMAGE_SIZE, PREDICTED

# LoadedModel.run's signature: images (N,28,28) and the graph outputs to compute -> {output: array}.
RunFn = Callable[[np.ndarray, list[str]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Range:
    """A numeric parameter's default and inclusive bounds, for validation and for the API's documentation.

    ``text`` is what the API says of it (``{low}`` and ``{high}`` stand for the bounds), ``limit`` the field of
    ``method.Limits`` that lowers its upper bound per request (None: only ``high``), ``offered`` whether a request
    may set it (a parameter that is not keeps its default in the API)."""

    default: float
    low: float
    high: float
    integer: bool = True
    text: str = ""
    limit: str | None = None
    offered: bool = True

    def check(self, name: str, value: float) -> None:
        """ValueError naming the allowed range unless ``low <= value <= high`` (and an integer where required)."""
        kind, bounds = (
            ("an integer", f"[{self.low:d}, {self.high:d}]")
            if self.integer
            else ("a number", f"[{self.low:g}, {self.high:g}]")
        )
        number = isinstance(value, (int, np.integer) if self.integer else (int, float, np.integer, np.floating))
        if isinstance(value, bool) or not number or not self.low <= value <= self.high:
            raise ValueError(f"{name} must be {kind} in {bounds}, got {value!r}")


@dataclass(frozen=True)
class Choice:
    """A parameter taking one of a few names (the API lists them)."""

    default: str
    options: tuple[str, ...]
    offered: bool = True

    def check(self, name: str, value: str) -> None:
        """ValueError naming the options unless ``value`` is one of them."""
        if value not in self.options:
            raise ValueError(f"{name} must be one of {', '.join(self.options)}, got {value!r}")


def batch(
    images: np.ndarray, targets: Sequence[int] | np.ndarray, predicted: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 (N,28,28) and targets as int (N,) class indices (with ``predicted``, PREDICTED too: for
    the methods whose own runs find each image's predicted class); ValueError on any mismatch."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or len(x) == 0:
        raise ValueError(f"images must be (N,{IMAGE_SIZE},{IMAGE_SIZE}) with N >= 1, got shape {x.shape}")
    t = np.asarray(targets)
    if t.shape != (len(x),) or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"targets must be {len(x)} integer class indices, got shape {t.shape} of {t.dtype}")
    if t.min() < (PREDICTED if predicted else 0) or t.max() >= CLASSES:
        raise ValueError(f"targets must be classes in [0, {CLASSES - 1}], got {t.min()}..{t.max()}")
    return x, t.astype(np.intp)


def trapezoid_rule(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(α_k, weight_k) of the trapezoid rule over [0, 1] with ``steps`` points."""
    alphas = np.linspace(0, 1, steps)
    rule = np.full(steps, 1 / (steps - 1))
    rule[[0, -1]] /= 2
    return alphas, rule


SEGMENT_KINDS = ("grid", "slic")


@dataclass(frozen=True)
class Segments:
    """A partition of the image into features, written ``grid:N`` (an N x N grid of near-equal cells) or
    ``slic:N`` (about N SLIC superpixels): the features the black-box methods switch off and on.

    ``high`` bounds the features one request may ask for (``grid:N`` asks for N², ``slic:N`` for N), lowered per
    request by the ``limit`` field of ``method.Limits``."""

    default: str
    high: int
    text: str = ""
    limit: str | None = None
    offered: bool = True

    def check(self, name: str, value: str) -> None:
        """ValueError saying the form unless ``value`` is ``grid:N`` or ``slic:N`` of at most ``high`` features."""
        kind, _, count = str(value).partition(":")
        form = f"{name} must be grid:N (an N x N grid) or slic:N (about N superpixels)"
        if kind not in SEGMENT_KINDS or not count.isdigit() or len(count) > 6 or int(count) < 1:
            raise ValueError(f"{form}, got {value!r}")
        if segment_count(value) > self.high:
            raise ValueError(f"{form} of at most {self.high} segments, got {value!r} ({segment_count(value)})")


def segment_count(value: str) -> int:
    """The features ``grid:N`` (N²) or ``slic:N`` (N, SLIC's target) asks for."""
    kind, _, count = value.partition(":")
    return int(count) ** 2 if kind == "grid" else int(count)


Parameter = Range | Choice | Segments
