"""An imported model's preprocessing: a picture (or an MNIST-style grey digit) as the model's input tensor.

``resize-crop`` is torchvision's ``Resize(resize) + CenterCrop(size) + ToTensor() + Normalize(mean, std)`` on a PIL
image: the shorter side to ``resize`` with PIL's antialiased bilinear resize, the centre crop (rounded as
torchvision rounds it, zero padding where the picture is smaller than the crop), [0, 1] and ``(x - mean) / std`` per
channel. ``mnist`` is the shipped digit pipeline (``service.images.decoding.prepare``), scaled and laid out the
same way. Both give one float32 image (1, C, H, W) or (1, H, W, C), as the model's layout says.
"""

from __future__ import annotations

import io

import numpy as np
from numpy.lib import format as npy_format
from PIL import Image

from service.contract import ImportedInput, ImportedModel, Preprocessing
from service.images.decoding import DEFAULT_FORMATS, MAX_ASPECT_RATIO, MNIST_SIDE, decode, decode_picture, prepare
from service.images.npy import BatchError, check_count

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


def pictures_input(pictures: np.ndarray, spec: ImportedInput, preprocessing: Preprocessing) -> np.ndarray:
    """uint8 pictures as the model saw them ((N, H, W) grey or (N, H, W, C), e.g. an analysis' top images) as the
    model's inputs: (N, C, H, W) or (N, H, W, C), normalised."""
    pixels = pictures.reshape(len(pictures), spec.height, spec.width, spec.channels).astype(np.float32) / 255.0
    inputs = normalise(pixels, preprocessing)
    return np.ascontiguousarray(inputs.transpose(0, 3, 1, 2) if spec.layout == "nchw" else inputs, dtype=np.float32)


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


def input_shape(spec: ImportedInput) -> tuple[int, int, int]:
    """One image's shape in the model's layout: (C, H, W) or (H, W, C)."""
    if spec.layout == "nchw":
        return (spec.channels, spec.height, spec.width)
    return (spec.height, spec.width, spec.channels)


def upload_input(
    data: bytes,
    model: ImportedModel,
    *,
    max_pixels: int,
    formats: frozenset[str] = DEFAULT_FORMATS,
    max_aspect_ratio: float = MAX_ASPECT_RATIO,
    mode: str = "auto",
) -> np.ndarray:
    """Uploaded image bytes as ``model``'s input of one image, through its own preprocessing: ``mnist`` decodes to
    grey and runs the digit pipeline (``mode`` as for the shipped models), ``resize-crop`` decodes to RGB
    (``decode_picture``) and resizes and crops. Both decoders check the header against the limits first."""
    limits = {"max_pixels": max_pixels, "formats": formats, "max_aspect_ratio": max_aspect_ratio}
    if model.preprocessing.kind == "mnist":
        return digit_input(decode(data, **limits), model.input, model.preprocessing, mode)
    return picture_input(decode_picture(data, **limits), model.input, model.preprocessing)


def parse_input_npy(data: bytes, max_images: int, spec: ImportedInput) -> np.ndarray:
    """A float32 .npy array (N, *input_shape(spec)) of model inputs (already preprocessed: any finite values),
    its header checked before any allocation; BatchError saying what is wrong otherwise."""
    expected_shape = input_shape(spec)
    stream = io.BytesIO(data)
    try:
        version = npy_format.read_magic(stream)
        reader = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
        shape, fortran_order, dtype = reader(stream)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise BatchError(f"the body is not a valid .npy file ({exc}); save the array with numpy.save") from exc
    if not all(type(side) is int and side >= 0 for side in shape) or tuple(shape[1:]) != expected_shape:
        raise BatchError(f"array shape {shape} is not (N, {', '.join(map(str, expected_shape))}), the model's input")
    if dtype != np.dtype("<f4"):
        raise BatchError(f"array dtype {dtype} is not float32: send the model's preprocessed inputs")
    check_count(shape[0], max_images)
    offset, expected = stream.tell(), int(np.prod(shape)) * 4
    if len(data) - offset != expected:
        raise BatchError(f"the .npy header promises {expected} bytes of data but {len(data) - offset} follow")
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape, order="F" if fortran_order else "C")
    if not np.isfinite(array).all():
        raise BatchError("the array holds NaN or infinite values")
    return np.ascontiguousarray(array, dtype=np.float32)
