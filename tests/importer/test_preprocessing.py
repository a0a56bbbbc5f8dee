"""The ``resize-crop`` preprocessing equals torchvision's Resize + CenterCrop + ToTensor + Normalize on the same
photo, within 1e-5 per value."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from torchvision import transforms

from service.contract import ImportedInput, Preprocessing
from service.images.preprocessing import default_resize, picture_input
from tests.helpers import ROOT

PHOTO = ROOT / "examples" / "photo-3.jpg"
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def torchvision_input(picture: Image.Image, resize: int, size: tuple[int, int], mean, std) -> np.ndarray:
    pipeline = transforms.Compose(
        [transforms.Resize(resize), transforms.CenterCrop(size), transforms.ToTensor(), transforms.Normalize(mean, std)]
    )
    return pipeline(picture).numpy()[np.newaxis]


@pytest.mark.parametrize(
    ("size", "crop", "resize"),
    [
        ("photo", (224, 224), 256),
        ("photo", (64, 64), None),
        ("photo", (96, 128), 140),
        ("wide", (64, 64), None),
        ("small", (64, 64), 80),
    ],
)
def test_resize_crop_equals_torchvisions_transforms_on_rgb(size, crop, resize):
    picture = Image.open(PHOTO).convert("RGB")
    picture = {"photo": picture, "wide": picture.resize((300, 90)), "small": picture.resize((40, 30))}[size]
    resize = resize or default_resize(*crop)
    spec = ImportedInput(name="input", layout="nchw", channels=3, height=crop[0], width=crop[1], dtype="float32")
    recipe = Preprocessing(kind="resize-crop", mean=MEAN, std=STD, resize=resize, crop=list(crop))
    ours = picture_input(picture, spec, recipe)
    expected = torchvision_input(picture, resize, crop, MEAN, STD)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= 1e-5


def test_resize_crop_equals_torchvisions_transforms_on_grey_in_nhwc():
    picture = Image.open(PHOTO).convert("L")
    spec = ImportedInput(name="input", layout="nhwc", channels=1, height=64, width=64, dtype="float32")
    recipe = Preprocessing(kind="resize-crop", mean=[0.5], std=[0.25], resize=73, crop=[64, 64])
    ours = picture_input(picture, spec, recipe)
    expected = torchvision_input(picture, 73, (64, 64), [0.5], [0.25]).transpose(0, 2, 3, 1)
    assert ours.shape == (1, 64, 64, 1)
    assert np.abs(ours - expected).max() <= 1e-5


def test_a_colour_photo_for_a_grey_model_is_made_grey_as_pil_does():
    picture = Image.open(PHOTO)
    spec = ImportedInput(name="input", layout="nchw", channels=1, height=32, width=32, dtype="float32")
    recipe = Preprocessing(kind="resize-crop", mean=[0.0], std=[1.0], resize=36, crop=[32, 32])
    expected = torchvision_input(picture.convert("L"), 36, (32, 32), [0.0], [1.0])
    assert np.abs(picture_input(picture, spec, recipe) - expected).max() <= 1e-5
