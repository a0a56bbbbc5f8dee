"""Zeiler and Fergus' figure 5 for one digit, drawn with Pillow (the service has no matplotlib): three panels over the
transform's amounts, each layer's distance from the original (each curve relative to its own maximum, the maximum in
the legend), the tracked class's probability, and the predicted class."""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.pictures.png import png_bytes

PANEL = (300, 230)
MARGIN = (46, 40, 14, 40)  # left, top, right, bottom inside a panel
LAYER_COLOURS = {"conv1": (31, 119, 180), "conv2": (255, 127, 14), "pool": (44, 160, 44), "dense1": (214, 39, 40)}
INK, GRID, TARGET = (0, 0, 0), (225, 225, 225), (214, 39, 40)


class InvarianceCurves(Protocol):
    """What the figure draws (``service.studies.invariance.Invariance`` has these fields): the amounts of one
    transform, each layer's distance from the original, the tracked class's probability and the predicted class."""

    transform: str
    amounts: np.ndarray
    distance: dict[str, np.ndarray]
    probability: np.ndarray
    predicted: np.ndarray
    target: int


@functools.cache
def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at 11 px, loaded once (loading it costs milliseconds)."""
    return ImageFont.load_default(size=11)


def _ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    return np.linspace(low, high, count)


class _Panel:
    """One chart: a plot box inside the panel at ``left``, with data-to-pixel mapping."""

    def __init__(self, draw: ImageDraw.ImageDraw, left: int, x: np.ndarray, y_range: tuple[float, float]) -> None:
        self.draw, self.font = draw, _font()
        self.box = (left + MARGIN[0], MARGIN[1], left + PANEL[0] - MARGIN[2], PANEL[1] - MARGIN[3])
        self.x_range = (float(x.min()), float(x.max()) if x.max() > x.min() else float(x.min()) + 1)
        self.y_range = y_range

    def point(self, x: float, y: float) -> tuple[float, float]:
        (x0, y0, x1, y1), (a, b), (c, d) = self.box, self.x_range, self.y_range
        return x0 + (x - a) / (b - a) * (x1 - x0), y1 - (y - c) / (d - c) * (y1 - y0)

    def axes(self, title: str, xlabel: str, y_ticks: np.ndarray, y_format: str) -> None:
        x0, y0, x1, y1 = self.box
        for value in y_ticks:
            _, y = self.point(self.x_range[0], float(value))
            self.draw.line([(x0, y), (x1, y)], fill=GRID)
            self.draw.text((x0 - 4, y), format(value, y_format), fill=INK, font=self.font, anchor="rm")
        for value in _ticks(*self.x_range):
            x, _ = self.point(float(value), self.y_range[0])
            self.draw.line([(x, y1), (x, y1 + 3)], fill=INK)
            self.draw.text((x, y1 + 5), f"{value:g}", fill=INK, font=self.font, anchor="mt")
        self.draw.rectangle(self.box, outline=INK)
        self.draw.text(((x0 + x1) / 2, y1 + 20), xlabel, fill=INK, font=self.font, anchor="mt")
        self.draw.text(((x0 + x1) / 2, 8), title, fill=INK, font=self.font, anchor="mt")

    def line(self, x: np.ndarray, y: np.ndarray, colour: tuple[int, int, int]) -> None:
        self.draw.line([self.point(float(a), float(b)) for a, b in zip(x, y)], fill=colour, width=2)

    def dots(self, x: np.ndarray, y: np.ndarray, colours: list[tuple[int, int, int]]) -> None:
        for a, b, colour in zip(x, y, colours):
            cx, cy = self.point(float(a), float(b))
            self.draw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=colour)


def invariance_png(result: InvarianceCurves, unit: str) -> bytes:
    """The three panels side by side as an RGB PNG; ``unit`` is the transform's (px, degrees, ...)."""
    x = result.amounts
    image = Image.new("RGB", (3 * PANEL[0], PANEL[1]), "white")
    draw = ImageDraw.Draw(image)
    xlabel = f"{result.transform} ({unit})"

    distance = _Panel(draw, 0, x, (0.0, 1.05))
    distance.axes("distance from the original / its max (legend: max)", xlabel, _ticks(0, 1), ".2f")
    legend_x = 6
    for layer, values in result.distance.items():
        top = float(values.max())
        distance.line(x, values / top if top > 0 else values, LAYER_COLOURS[layer])
        label = f"{layer} {top:.3g}"
        draw.text((legend_x, 22), label, fill=LAYER_COLOURS[layer], font=distance.font)
        legend_x += int(distance.font.getlength(label)) + 8

    probability = _Panel(draw, PANEL[0], x, (0.0, 1.05))
    probability.axes(f"probability of class {result.target}", xlabel, _ticks(0, 1), ".2f")
    probability.line(x, result.probability, TARGET)

    predicted = _Panel(draw, 2 * PANEL[0], x, (-0.5, 9.5))
    predicted.axes(f"predicted class (red: {result.target})", xlabel, np.arange(10), "d")
    predicted.dots(x, result.predicted, [TARGET if c == result.target else INK for c in result.predicted])

    return png_bytes(np.asarray(image))
