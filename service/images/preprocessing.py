"""An imported model's preprocessing: a picture (or an MNIST-style grey digit) as the model's input tensor.

``resize-crop`` is torchvision's ``Resize(resize) + CenterCrop(size) + ToTensor() + Normalize(mean, std)`` on a PIL
image: the shorter side to ``resize`` with PIL's antialiased bilinear resize, the centre crop (rounded as
torchvision rounds it, zero padding where the picture is smaller than the crop), [0, 1] and ``(x - mean) / std`` per
channel. ``mnist`` is the shipped digit pipeline (``service.images.decoding.prepare``), scaled and laid out the
same way. Both give one float32 image (1, C, H, W) or (1, H, W, C), as the model's layout says.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from service.contract import ImportedInput, Preprocessing
from service.images.decoding import MNIST_SIDE, prepare

# torchvision's ImageNet recipe: the shorter side is resized to the crop size x 256 / 224.
RESIZE_RATIO = 256 / 224


def default_resize(height: int, width: int) -> int:
    """The shorter side before the centre crop when none is given: the crop's shorter side x 256 / 224."""
    return int(min(height, width) * RESIZE_RATIO)


def resize_shorter_side(picture: Image.Image, shorter: int) -> Image.Image:
    """``picture`` with its shorter side ``shorter`` and the aspect ratio kept, as ``torchvision`` Resize(int) does
    it on a PIL image (the longer side truncated, bilinear with PIL's antialiasing)."""
    width, height = picture.size
    short, long = min(width, height), max(width, height)
    new_long = int(shorter * long / short)
    size = (shorter, new_long) if width <= height else (new_long, shorter)
    if size == picture.size:
        return picture
    return picture.resize(size, Image.Resampling.BILINEAR)


def centre_crop(picture: Image.Image, height: int, width: int) -> Image.Image:
    """The centre ``height`` x ``width`` of ``picture`` (torchvision's CenterCrop: offsets rounded half to even,
    zeros around a picture smaller than the crop)."""
    picture_width, picture_height = picture.size
    if width > picture_width or height > picture_height:
        padded = Image.new(picture.mode, (max(width, picture_width), max(height, picture_height)))
        left = (max(width, picture_width) - picture_width) // 2
        top = (max(height, picture_height) - picture_height) // 2
        padded.paste(picture, (left, top))
        picture, (picture_width, picture_height) = padded, padded.size
    top = int(round((picture_height - height) / 2.0))
    left = int(round((picture_width - width) / 2.0))
    return picture.crop((left, top, left + width, top + height))


def normalise(channels_last: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """(H, W, C) values in [0, 1] as float32 ``(x - mean) / std`` per channel."""
    mean = np.asarray(preprocessing.mean, dtype=np.float32)
    std = np.asarray(preprocessing.std, dtype=np.float32)
    return (channels_last.astype(np.float32, copy=False) - mean) / std


def laid_out(channels_last: np.ndarray, spec: ImportedInput) -> np.ndarray:
    """One (H, W, C) image as the model's batch of one, (1, C, H, W) or (1, H, W, C)."""
    image = channels_last.transpose(2, 0, 1) if spec.layout == "nchw" else channels_last
    return np.ascontiguousarray(image[np.newaxis], dtype=np.float32)


def picture_input(picture: Image.Image, spec: ImportedInput, preprocessing: Preprocessing) -> np.ndarray:
    """A decoded picture as the model's input of one image, through ``resize-crop``: RGB for a three-channel model,
    grey for a one-channel one."""
    picture = picture.convert("RGB" if spec.channels == 3 else "L")
    picture = centre_crop(resize_shorter_side(picture, preprocessing.resize), spec.height, spec.width)
    pixels = np.asarray(picture, dtype=np.float32) / np.float32(255.0)
    return laid_out(normalise(pixels.reshape(spec.height, spec.width, spec.channels), preprocessing), spec)


def digit_input(gray: np.ndarray, spec: ImportedInput, preprocessing: Preprocessing, mode: str = "auto") -> np.ndarray:
    """A decoded grey image (2-D, [0, 1]) as the model's input of one image, through the shipped MNIST pipeline
    (``prepare``, 28 x 28, light digit on black); the model's input must be 28 x 28."""
    if (spec.height, spec.width) != (MNIST_SIDE, MNIST_SIDE):
        raise ValueError(f"the mnist preprocessing makes 28x28 images; this model takes {spec.height}x{spec.width}")
    digit = prepare(gray, mode)[:, :, np.newaxis]
    return laid_out(normalise(np.repeat(digit, spec.channels, axis=2), preprocessing), spec)
