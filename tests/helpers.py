"""Small helpers the tests share: encoding arrays as image files, posting them, reading PNG answers, model folders."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from service.registry import VARIANTS_DIR

MODELS = Path(__file__).resolve().parents[1] / "models"


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


def link_shipped_models(target: Path) -> Path:
    """``target`` (created) holding symlinks to the shipped models and statistics, without ``models/variants``."""
    target.mkdir(parents=True, exist_ok=True)
    for path in MODELS.iterdir():
        if path.name != VARIANTS_DIR:
            (target / path.name).symlink_to(path)
    return target
