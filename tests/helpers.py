"""Small helpers the API tests share: encoding arrays as image files, posting them, reading PNG answers."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image


def encode(pixels: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    """A uint8 array as image file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def post_image(client: TestClient, url: str, data: bytes, content_type: str = "image/png", **params):
    """POST ``data`` as the raw body."""
    return client.post(url, content=data, headers={"content-type": content_type}, params=params)


def decode_png(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "PNG"
    return image
