"""Attribution maps drawn as heat maps over the network's input (plain numpy, no matplotlib).

A signed map gets a diverging colour map centred on zero (blue for negative, red for positive, the end colours of
Moreland's cool-warm), scaled to [-m, m] with m = max |map|; a non-negative map gets a sequential one (black-red-
yellow-white, like matplotlib's ``hot``), scaled to [0, max]. Each pixel of the input (gray) is blended with its
colour in proportion to the map's magnitude there, so that zero attribution shows the digit as it is and the
strongest pixels their full colour. The range is returned for the legend.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Anchors (position in [0, 1], RGB) of the two colour maps, interpolated linearly.
DIVERGING = ((0.0, (59, 76, 192)), (0.5, (221, 221, 221)), (1.0, (180, 4, 38)))
SEQUENTIAL = ((0.0, (0, 0, 0)), (0.4, (230, 0, 0)), (0.8, (255, 210, 0)), (1.0, (255, 255, 255)))
DIVERGING_NAME, SEQUENTIAL_NAME = "diverging", "sequential"


@dataclass(frozen=True)
class HeatMap:
    """The picture (H, W, 3) uint8, the colour map's name and the values at its two ends (the legend)."""

    rgb: np.ndarray
    colormap: str
    low: float
    high: float


def colormap(positions: np.ndarray, anchors: tuple = DIVERGING) -> np.ndarray:
    """RGB (..., 3) float in [0, 255] of ``positions`` in [0, 1] along the anchors (clipped outside)."""
    where = np.array([a[0] for a in anchors])
    colours = np.array([a[1] for a in anchors], dtype=np.float64)
    t = np.clip(np.asarray(positions, dtype=np.float64), 0, 1)
    return np.stack([np.interp(t, where, colours[:, c]) for c in range(3)], axis=-1)


def bar_colours(name: str) -> np.ndarray:
    """The colour map ``name`` (``diverging`` or ``sequential``) from its low end to its high end, (256, 3), for the
    legend's colour bar."""
    anchors = DIVERGING if name == DIVERGING_NAME else SEQUENTIAL
    return colormap(np.linspace(0, 1, 256), anchors)


def heat_map(image: np.ndarray, values: np.ndarray, signed: bool, scale: int = 1) -> HeatMap:
    """``values`` over ``image`` in [0, 1] (both of the input's size: a layer's map is placed over the input first,
    ``service.attribution.placement``; the image grey, or colour (H, W, 3)), upscaled by ``scale``."""
    m = np.asarray(values, dtype=np.float64)
    picture = np.clip(np.asarray(image, dtype=np.float64), 0, 1)
    gray = (picture if picture.shape == (*m.shape, 3) else picture.reshape(m.shape)[..., None]) * 255
    if signed:
        top = float(np.abs(m).max())
        low, high, name = -top, top, DIVERGING_NAME
        positions = 0.5 + 0.5 * m / top if top > 0 else np.full(m.shape, 0.5)
        alpha = np.abs(m) / top if top > 0 else np.zeros(m.shape)
        colours = colormap(positions, DIVERGING)
    else:
        top = float(max(m.max(), 0.0))
        low, high, name = 0.0, top, SEQUENTIAL_NAME
        positions = np.clip(m, 0, None) / top if top > 0 else np.zeros(m.shape)
        alpha, colours = positions, colormap(positions, SEQUENTIAL)
    rgb = np.rint(gray * (1 - alpha[..., None]) + colours * alpha[..., None]).astype(np.uint8)
    if scale > 1:  # across first, then whole rows down (as grids.upscale_nearest)
        rgb = np.repeat(np.repeat(rgb, scale, axis=1), scale, axis=0)
    return HeatMap(rgb, name, low, high)
