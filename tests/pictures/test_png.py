"""The PNG encoder against Pillow's decoder: every array comes back exactly, in every colour type."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.pictures.png import png_bytes

RNG = np.random.default_rng(0)


def decoded(data: bytes) -> tuple[str, np.ndarray]:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, np.asarray(image)


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((28, 28), "L"), ((1, 1), "L"), ((224, 224, 3), "RGB"), ((3, 500, 3), "RGB"), ((17, 5, 4), "RGBA")],
)
def test_random_pixels_decode_to_the_same_array(shape, mode):
    pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
    decoded_mode, back = decoded(png_bytes(pixels))
    assert decoded_mode == mode
    np.testing.assert_array_equal(back, pixels)


def test_an_upscaled_picture_decodes_exactly_and_is_no_larger_than_pillow_s():
    small = RNG.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    picture = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)
    ours = png_bytes(picture)
    np.testing.assert_array_equal(decoded(ours)[1], picture)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG", compress_level=1)
    assert len(ours) <= len(buffer.getvalue())


def test_a_non_contiguous_view_is_encoded_as_its_values():
    pixels = RNG.integers(0, 256, (40, 30, 3), dtype=np.uint8)[::2, ::-1]
    np.testing.assert_array_equal(decoded(png_bytes(pixels))[1], pixels)


@pytest.mark.parametrize(
    "pixels",
    [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8), np.zeros((0, 4), np.uint8), np.zeros(4, np.uint8)],
)
def test_an_array_that_is_no_picture_raises_a_value_error(pixels):
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(pixels)
