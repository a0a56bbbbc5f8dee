"""Where a layer's units look: a map at a layer's resolution placed over the classifier's 28x28 input."""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.graphs.classifier_weights import IMAGE_SIZE


def to_input_size(values: np.ndarray) -> np.ndarray:
    """A layer's map (H, W) placed over the 28x28 input where its units look.

    conv1's unit (i, j) is centred on input pixel (i+1, j+1) and conv2's on (i+2, j+2), so their 26x26 and 24x24
    maps are padded with zeros by 1 and 2; a pool unit covers 2x2 conv2 units, so its 12x12 map is repeated 2x2
    and padded by 2. Any other size is resized bilinearly (as pytorch-grad-cam does). 28x28 maps are returned as
    they are.
    """
    m = np.asarray(values, dtype=np.float32)
    size = m.shape[0]
    if m.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return m
    if m.shape[0] == m.shape[1] and size * 2 + 4 == IMAGE_SIZE:
        m, size = np.kron(m, np.ones((2, 2), np.float32)), size * 2
    if m.shape[0] == m.shape[1] and (IMAGE_SIZE - size) % 2 == 0 and 0 < IMAGE_SIZE - size <= 4:
        border = (IMAGE_SIZE - size) // 2  # zeros around it, written directly (np.pad takes 50 us for this)
        placed = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
        placed[border : border + size, border : border + size] = m
        return placed
    return np.asarray(Image.fromarray(m, mode="F").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR))


def resized(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A layer's map (h, w) resized bilinearly to ``height`` x ``width`` (as pytorch-grad-cam places its maps)."""
    m = np.asarray(values, dtype=np.float32)
    return np.asarray(Image.fromarray(m, mode="F").resize((width, height), Image.Resampling.BILINEAR))
