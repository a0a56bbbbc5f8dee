"""Zeiler and Fergus' figure 5 for one image, drawn with Pillow (the service has no matplotlib): three panels over the
transform's amounts, each layer's distance from the original (each curve relative to its own maximum, the maximum in
the legend), the tracked class's probability, and the predicted class; below them, the transformed inputs in order,
in colour for a colour model.

A model with more than MAX_CURVES layers (an imported one) has MAX_CURVES of them drawn, evenly spaced through its
depth from the first to the last; the legend wraps onto more lines when it is wider than its panel."""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.pictures.grids import to_uint8
from service.pictures.png import png_bytes

PANEL = (300, 230)
MARGIN = (46, 40, 14, 40)  # left, top, right, bottom inside a panel
LAYER_COLOURS = {"conv1": (31, 119, 180), "conv2": (255, 127, 14), "pool": (44, 160, 44), "dense1": (214, 39, 40)}
PALETTE = (*LAYER_COLOURS.values(), (148, 103, 189), (140, 86, 75))  # other layers' colours, in drawing order
MAX_CURVES = 4
LINE = 12  # a legend line's height
THUMBNAIL = 48  # the largest side of a transformed input in the strip below the panels
INK, GRID, TARGET = (0, 0, 0), (225, 225, 225), (214, 39, 40)


class InvarianceCurves(Protocol):
    """What the figure draws (``service.studies.invariance.Invariance`` has these fields): the amounts of one
    transform, each layer's distance from the original, the tracked class's probability and the predicted class."""

    transform: str
    amounts: np.ndarray
    inputs: np.ndarray
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

    def __init__(
        self, draw: ImageDraw.ImageDraw, left: int, x: np.ndarray, y_range: tuple[float, float], extra: int = 0
    ) -> None:
        self.draw, self.font = draw, _font()
        self.box = (left + MARGIN[0], MARGIN[1] + extra, left + PANEL[0] - MARGIN[2], PANEL[1] + extra - MARGIN[3])
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


def drawn_layers(names: list[str]) -> list[str]:
    """The layers whose curves are drawn: all of at most MAX_CURVES, else MAX_CURVES evenly spaced through them
    (the first and the last among them)."""
    if len(names) <= MAX_CURVES:
        return names
    return [names[int(i)] for i in np.round(np.linspace(0, len(names) - 1, MAX_CURVES))]


def _legend_lines(labels: list[str], font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> list[list[str]]:
    """``labels`` in lines no wider than a panel, in order."""
    lines: list[list[str]] = [[]]
    width = 6
    for label in labels:
        length = int(font.getlength(label)) + 8
        if lines[-1] and width + length > PANEL[0]:
            lines.append([])
            width = 6
        lines[-1].append(label)
        width += length
    return lines


def _strip(inputs: np.ndarray, width: int) -> Image.Image:
    """The transformed inputs side by side in ``width`` pixels, each scaled to fit its cell (at most THUMBNAIL)."""
    count, height, side = len(inputs), inputs.shape[1], inputs.shape[2]
    cell = width // count
    scale = min(THUMBNAIL / max(height, side), (cell - 2) / side)
    size = (max(1, round(side * scale)), max(1, round(height * scale)))
    strip = Image.new("RGB", (width, THUMBNAIL + 8), "white")
    pixels = to_uint8(inputs, 0.0, 1.0)
    for i, picture in enumerate(pixels):
        thumbnail = Image.fromarray(picture).convert("RGB").resize(size, Image.Resampling.BILINEAR)
        strip.paste(thumbnail, (i * cell + (cell - size[0]) // 2, 4 + (THUMBNAIL - size[1]) // 2))
    return strip


def invariance_png(result: InvarianceCurves, unit: str) -> bytes:
    """The three panels side by side over the strip of transformed inputs, as an RGB PNG; ``unit`` is the
    transform's (px, degrees, ...)."""
    x = result.amounts
    font = _font()
    layers = drawn_layers(list(result.distance))
    colours = {layer: LAYER_COLOURS.get(layer, PALETTE[i % len(PALETTE)]) for i, layer in enumerate(layers)}
    labels = {layer: f"{layer} {float(result.distance[layer].max()):.3g}" for layer in layers}
    lines = _legend_lines(list(labels.values()), font)
    extra = LINE * (len(lines) - 1)
    strip = _strip(result.inputs, 3 * PANEL[0])
    image = Image.new("RGB", (3 * PANEL[0], PANEL[1] + extra + strip.height), "white")
    image.paste(strip, (0, PANEL[1] + extra))
    draw = ImageDraw.Draw(image)
    xlabel = f"{result.transform} ({unit})"

    distance = _Panel(draw, 0, x, (0.0, 1.05), extra)
    distance.axes("distance from the original / its max (legend: max)", xlabel, _ticks(0, 1), ".2f")
    for layer in layers:
        values = result.distance[layer]
        top = float(values.max())
        distance.line(x, values / top if top > 0 else values, colours[layer])
    by_label = {label: layer for layer, label in labels.items()}
    for row, line in enumerate(lines):
        legend_x = 6
        for label in line:
            draw.text((legend_x, 22 + LINE * row), label, fill=colours[by_label[label]], font=font)
            legend_x += int(font.getlength(label)) + 8

    probability = _Panel(draw, PANEL[0], x, (0.0, 1.05), extra)
    probability.axes(f"probability of class {result.target}", xlabel, _ticks(0, 1), ".2f")
    probability.line(x, result.probability, TARGET)

    classes = max(9, int(result.predicted.max()), result.target)
    predicted = _Panel(draw, 2 * PANEL[0], x, (-0.5, classes + 0.5), extra)
    predicted.axes(f"predicted class (red: {result.target})", xlabel, _class_ticks(classes), "d")
    predicted.dots(x, result.predicted, [TARGET if c == result.target else INK for c in result.predicted])

    return png_bytes(np.asarray(image))


def _class_ticks(highest: int) -> np.ndarray:
    """Up to eleven whole class numbers from 0 to ``highest`` (every class for the shipped ten)."""
    return np.unique(np.round(np.linspace(0, highest, min(highest + 1, 11)))).astype(int)
