"""Inputs that are not digits, all through the service's own ``preprocess=mnist`` path
(``service.images.decoding.prepare``):

- ``strokes``: random lines, arcs, rings and polylines, the synthetic non-digits the judge is trained against
  (outlier exposure);
- ``letters``: capital letters that resemble no digit, rendered from fonts (Pillow's bundled font, and DejaVu and
  Liberation where installed) at several sizes and rotations, to measure the judge, never to train it;
- ``uniform_noise``: 28x28 inputs of uniform noise, used as they are.

Black ink on white at 112 px or more, as a scan or a drawing would arrive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from service.images import decoding

LETTERS = "ACEFHKLMNPRTUVWXY"
FONT_FILES = (
    "dejavu/DejaVuSans.ttf",
    "dejavu/DejaVuSans-Bold.ttf",
    "dejavu/DejaVuSerif.ttf",
    "dejavu/DejaVuSansMono.ttf",
    "liberation/LiberationSans-Regular.ttf",
    "liberation/LiberationSerif-Bold.ttf",
)
FONT_ROOT = Path("/usr/share/fonts/truetype")
SIZES = (64, 96)
ANGLES = (-15, 0, 15)
CANVAS = 160


def fonts() -> list[tuple[str, int, ImageFont.FreeTypeFont | ImageFont.ImageFont]]:
    """(name, size, font) for Pillow's bundled font and every installed one of ``FONT_FILES``, at each size."""
    found = [("pillow-default", size, ImageFont.load_default(size=size)) for size in SIZES]
    for name in FONT_FILES:
        if (FONT_ROOT / name).is_file():
            found += [(Path(name).stem, size, ImageFont.truetype(str(FONT_ROOT / name), size)) for size in SIZES]
    return found


def _prepared(canvas: Image.Image) -> np.ndarray | None:
    """The canvas (black on white) as the network's input, or None when preprocessing finds nothing."""
    try:
        return decoding.prepare(np.asarray(canvas, np.float32) / 255.0, "mnist")
    except decoding.NoDigitError:
        return None


def letters() -> tuple[np.ndarray, list[str]]:
    """Every letter of ``LETTERS`` in every font, size and angle: float32 (N, 28, 28) and the letter of each."""
    images, names = [], []
    for _, _, font in fonts():
        for letter in LETTERS:
            for angle in ANGLES:
                canvas = Image.new("L", (CANVAS, CANVAS), 255)
                ImageDraw.Draw(canvas).text((CANVAS / 2, CANVAS / 2), letter, fill=0, font=font, anchor="mm")
                prepared = _prepared(canvas.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255))
                if prepared is not None:
                    images.append(prepared)
                    names.append(letter)
    return np.stack(images), names


def uniform_noise(count: int, seed: int = 0) -> np.ndarray:
    """``count`` 28x28 inputs of uniform noise in [0, 1], float32."""
    return np.random.default_rng(seed).random((count, 28, 28), dtype=np.float32)


def _stroke_canvas(rng: np.random.Generator) -> Image.Image:
    canvas = Image.new("L", (112, 112), 255)
    draw = ImageDraw.Draw(canvas)
    width = int(rng.integers(6, 16))
    for _ in range(int(rng.integers(1, 5))):
        kind = int(rng.integers(0, 4))
        p = rng.uniform(10, 102, size=4)
        box = [min(p[0], p[2]), min(p[1], p[3]), max(p[0], p[2]) + 5, max(p[1], p[3]) + 5]
        if kind == 0:
            draw.line(list(p), fill=0, width=width)
        elif kind == 1:
            draw.arc(box, float(rng.uniform(0, 360)), float(rng.uniform(0, 360)), fill=0, width=width)
        elif kind == 2:
            points = [tuple(rng.uniform(10, 102, 2)) for _ in range(int(rng.integers(3, 6)))]
            draw.line(points, fill=0, width=width, joint="curve")
        else:
            draw.ellipse(box, outline=0, width=width)
    return canvas


def strokes(count: int, seed: int = 1) -> np.ndarray:
    """``count`` synthetic non-digits: one to four random strokes (lines, arcs, polylines, rings), float32."""
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    while len(images) < count:
        prepared = _prepared(_stroke_canvas(rng))
        if prepared is not None:
            images.append(prepared)
    return np.stack(images)
