"""Safe decoding of uploaded images and MNIST-style normalisation.

Plain functions over bytes, Pillow images and numpy arrays; no web code. Every
problem with an upload is raised as an `ImageError` subclass whose message is
meant for the person who uploaded the image; the web layer maps each subclass
to an HTTP status.

Decompression bombs and parser bombs: `check_header` walks the header with a
fixed budget of markers, chunks or blocks (`service.images.headers`), and
`decode` compares the declared width x height and aspect ratio with the
caller's limits before Pillow parses the file or decodes any pixel
(`decode_checked` decodes bytes whose header a caller has already checked). Every
buffer after decoding is bounded by `MAX_WORKING_SIDE`, not by the upload. Pillow's process-wide
`Image.MAX_IMAGE_PIXELS` is deliberately left as it is (changing it would
silently affect every other user of Pillow in the process); when Pillow's own
guard fires first, it is reported as `ImageTooLargeError` as well.
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np
from PIL import Image, ImageChops, ImageOps, ImageStat, UnidentifiedImageError

from service.errors import BadInputError, NotApplicableError, TooLargeError, UnsupportedError
from service.images.headers import Header, TooManySegments, read_header
from service.runtime.cancellation import checkpoint

DEFAULT_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "WEBP"})
PREPROCESS_MODES = ("auto", "mnist", "none")

MNIST_SIDE = 28
MNIST_BOX = 20
# Row/column index the centre of mass goes to; MNIST's own digits sit within 0.5 px of it.
MNIST_CENTRE = 14.0
BORDER_FRACTION = 0.05
# Below this (fraction of full scale above the background) the image counts as blank.
MIN_CONTRAST = 0.1
# About 30% of MNIST's ink pixels are saturated, so the 70% quantile of the digit maps to 1.0.
STROKE_QUANTILE = 0.7
# Large images are downscaled (JPEG by libjpeg at 1/2, 1/4, 1/8) while both sides stay >= this,
WORKING_SIDE = 560
# and always until the longer side is at most this, so that no buffer grows with the upload.
MAX_WORKING_SIDE = 4 * WORKING_SIDE
# A digit is never a thin strip: width / height (or its inverse) above this is refused.
MAX_ASPECT_RATIO = 25.0
# Uploads this small, with at most INLINE_PIXELS pixels, cost well under a millisecond to decode.
INLINE_BYTES = 256 * 1024
INLINE_PIXELS = 200 * 200
UINT16_MAX = 65535.0
ALPHA_MODES = frozenset({"RGBA", "LA", "PA"})
SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L"})
CORRUPT_MESSAGE = "image data is truncated or corrupt and cannot be decoded"
BLANK_MESSAGE = "the image looks blank: no digit stands out from the background"


class ImageError(NotApplicableError, ValueError):
    """An upload that cannot be turned into a digit; `message` is user-facing."""

    code = "unusable_image"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedFormatError(UnsupportedError, ImageError):
    """Not an image, or an image format outside the allowed set."""

    code = "unsupported_format"


class ImageTooLargeError(TooLargeError, ImageError):
    """The image has more pixels than the caller allows."""

    code = "too_many_pixels"


class CorruptImageError(BadInputError, ImageError):
    """Empty, truncated or otherwise undecodable image data."""

    code = "corrupt_image"


class MalformedImageError(CorruptImageError):
    """A file built to keep the parser busy: more markers, chunks or blocks than any real image holds."""

    code = "too_many_segments"


class AspectRatioError(ImageError):
    """An image far wider than tall, or the reverse: no digit looks like that."""

    code = "aspect_ratio"


class NoDigitError(ImageError):
    """The image is blank or uniform: nothing stands out to classify."""

    code = "no_digit"


class BadPreprocessError(ImageError):
    """The image does not fit the requested preprocessing mode."""


def decode(
    data: bytes,
    *,
    max_pixels: int,
    formats: frozenset[str] = DEFAULT_FORMATS,
    max_aspect_ratio: float = MAX_ASPECT_RATIO,
) -> np.ndarray:
    """Decode uploaded bytes into a 2-D float32 grayscale array in [0, 1], 1.0 = white.

    The header is walked within a fixed budget and its size checked against `max_pixels` and
    `max_aspect_ratio` before Pillow parses the file, so oversized or parser-bomb images cost neither time
    nor memory. Takes the first frame of animations, applies the EXIF orientation, flattens transparency
    and downscales photos far larger than a digit needs (JPEG already inside libjpeg), keeping both sides
    at least WORKING_SIDE pixels and the longer one at most MAX_WORKING_SIDE.
    """
    check_header(data, max_pixels=max_pixels, max_aspect_ratio=max_aspect_ratio)
    return decode_checked(data, max_pixels=max_pixels, formats=formats, max_aspect_ratio=max_aspect_ratio)


def decode_checked(
    data: bytes,
    *,
    max_pixels: int,
    formats: frozenset[str] = DEFAULT_FORMATS,
    max_aspect_ratio: float = MAX_ASPECT_RATIO,
) -> np.ndarray:
    """``decode`` of bytes whose header ``check_header`` has already walked and passed under the same limits: a
    caller that walked it (to choose where to decode) does not pay for the walk twice."""
    with _open(data, formats, max_pixels) as im:
        _check_size(im.size, max_pixels, max_aspect_ratio)
        im.draft("L", (WORKING_SIDE, WORKING_SIDE))
        checkpoint()
        _load(im)
        checkpoint()
        return _to_array(_to_gray(_shrink(_reducible(im))))


def decode_picture(
    data: bytes,
    *,
    max_pixels: int,
    formats: frozenset[str] = DEFAULT_FORMATS,
    max_aspect_ratio: float = MAX_ASPECT_RATIO,
) -> Image.Image:
    """Decode uploaded bytes into an RGB picture at its own size, for a colour model's preprocessing
    (``service.images.preprocessing.picture_input``).

    The same guards as ``decode``: the header is walked within its fixed budget and checked against `max_pixels`
    and `max_aspect_ratio` before Pillow parses the file; the first frame of animations, the EXIF orientation
    applied, transparency flattened onto white, 16-bit images scaled to 8 bits."""
    check_header(data, max_pixels=max_pixels, max_aspect_ratio=max_aspect_ratio)
    with _open(data, formats, max_pixels) as im:
        _check_size(im.size, max_pixels, max_aspect_ratio)
        checkpoint()
        _load(im)
        checkpoint()
        if im.mode in SIXTEEN_BIT_MODES:
            return Image.fromarray((np.asarray(im, dtype=np.float32) / 257.0).astype(np.uint8)).convert("RGB")
        if im.mode in ALPHA_MODES or "transparency" in im.info:
            rgba = im.convert("RGBA")
            backdrop = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(backdrop, rgba).convert("RGB")
        return im.convert("RGB")


def check_header(data: bytes, *, max_pixels: int, max_aspect_ratio: float = MAX_ASPECT_RATIO) -> Header | None:
    """The upload's declared format and size, checked against the limits, at a cost bounded in advance (cheap
    enough for the event loop); None when the walk cannot read the header (``decode`` lets Pillow decide)."""
    if not data:
        raise CorruptImageError("empty upload: no image data was received")
    try:
        header = read_header(data)
    except TooManySegments as exc:
        raise MalformedImageError(f"{exc}: refused before decoding") from None
    if header is not None:
        _check_size((header.width, header.height), max_pixels, max_aspect_ratio)
    return header


def cheap_to_decode(data: bytes, header: Header | None) -> bool:
    """Whether decoding ``data`` costs well under a millisecond: a small file of a small, readable image."""
    return header is not None and len(data) <= INLINE_BYTES and header.pixels <= INLINE_PIXELS


def _open(data: bytes, formats: frozenset[str], max_pixels: int) -> Image.Image:
    """Open lazily (header only), letting only the allowed formats' parsers see the bytes.

    Pillow raises UnidentifiedImageError when no allowed parser accepts the
    bytes, but a parser that accepts them can still fail on a cut-off header.
    """
    allowed = _pillow_formats(formats)
    try:
        return Image.open(io.BytesIO(data), formats=allowed)
    except UnidentifiedImageError:
        raise UnsupportedFormatError(f"not a supported image; allowed formats: {', '.join(allowed)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(
            f"image is too large: the limit is {max_pixels:,} pixels and its header "
            "declares far more (refused before decoding)"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise CorruptImageError(CORRUPT_MESSAGE) from None


@functools.cache
def _pillow_formats(formats: frozenset[str]) -> tuple[str, ...]:
    """The allowed formats as Pillow names them, sorted (made once per set of formats)."""
    return tuple(sorted(f.upper() for f in formats))


def _check_size(size: tuple[int, int], max_pixels: int, max_aspect_ratio: float = MAX_ASPECT_RATIO) -> None:
    """Refuse images with more than `max_pixels` pixels or a side more than `max_aspect_ratio` times the other,
    naming the limit and the size."""
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is too large: {width}x{height} is {width * height:,} pixels, the limit is {max_pixels:,} pixels"
        )
    if width and height and max(width, height) > max_aspect_ratio * min(width, height):
        raise AspectRatioError(
            f"image is {width}x{height}: one side is more than {max_aspect_ratio:g} times the other, the limit of "
            "this service; crop it around the digit"
        )


def _load(im: Image.Image) -> None:
    """Decode the pixel data (first frame) and apply the EXIF orientation in place."""
    try:
        im.load()
        ImageOps.exif_transpose(im, in_place=True)
    except (OSError, SyntaxError, ValueError, EOFError):
        raise CorruptImageError(CORRUPT_MESSAGE) from None


def _to_gray(im: Image.Image) -> Image.Image:
    """One grayscale band: 'I' (0..65535) for 16-bit images, else 'L' with transparency flattened."""
    if im.mode in SIXTEEN_BIT_MODES:
        return im.convert("I")
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        return _composite(im.convert("RGBA"))
    return im if im.mode == "L" else im.convert("L")


def _composite(rgba: Image.Image) -> Image.Image:
    """Flatten RGBA onto the backdrop that contrasts with the visible content.

    A drawing on a transparent canvas is usually dark strokes, which show on
    white; light (e.g. white or yellow) strokes would vanish on white, so they
    are put on black instead. Opaque images are unaffected by the choice.
    """
    luma = rgba.convert("L")
    alpha = rgba.getchannel("A")
    coverage = ImageStat.Stat(alpha).sum[0]
    shown = ImageStat.Stat(ImageChops.multiply(luma, alpha)).sum[0]
    content_is_light = coverage > 0 and shown / coverage > 0.5
    backdrop = Image.new("L", rgba.size, 0 if content_is_light else 255)
    return Image.composite(luma, backdrop, alpha)


def _reducible(im: Image.Image) -> Image.Image:
    """The decoded image in a mode Pillow can reduce, converting only what must be (palettes, bilevel, 16-bit):
    shrinking before the gray conversion keeps the large intermediate images to the one Pillow decoded."""
    if im.mode in ("RGBA", "RGB", "LA", "L", "I", "F"):
        return im
    if im.mode in SIXTEEN_BIT_MODES:
        return im.convert("I")
    if im.mode in ALPHA_MODES or "transparency" in im.info:
        return im.convert("RGBA")
    return im.convert("RGB") if im.mode in ("P", "CMYK", "YCbCr") else im.convert("L")


def _shrink(gray: Image.Image) -> Image.Image:
    """Average k x k blocks while both sides stay >= WORKING_SIDE, and at least until the longer side is at most
    MAX_WORKING_SIDE, so later steps stay fast and their buffers bounded."""
    factor = max(min(gray.size) // WORKING_SIDE, math.ceil(max(gray.size) / MAX_WORKING_SIDE))
    return gray.reduce(factor) if factor >= 2 else gray


def _to_array(gray: Image.Image) -> np.ndarray:
    """The grayscale band as float32 in [0, 1], scaled by its true full range (255 or 65535)."""
    if gray.mode != "I":  # 8-bit: already within [0, 255]
        return np.asarray(gray, dtype=np.float32) / np.float32(255.0)
    return np.clip(np.asarray(gray, dtype=np.float32) / UINT16_MAX, 0.0, 1.0)


def prepare(gray: np.ndarray, mode: str = "auto") -> np.ndarray:
    """Turn a decoded grayscale image into the (28, 28) float32 model input.

    "none" takes a 28x28 image as it is, "mnist" always runs `to_mnist`, and
    "auto" passes a 28x28 light-on-dark image through and normalises anything else.
    """
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocess mode {mode!r}; expected one of {', '.join(PREPROCESS_MODES)}")
    gray = _as_gray(gray)
    if mode == "none":
        return _exactly_mnist_sized(gray)
    if mode == "auto" and _is_mnist_like(gray):
        return gray
    return to_mnist(gray)


def _as_gray(gray: np.ndarray) -> np.ndarray:
    """Validate a non-empty 2-D array and view it as float32."""
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale array, got shape {gray.shape}")
    return gray


def _exactly_mnist_sized(gray: np.ndarray) -> np.ndarray:
    """Return a 28x28 image unchanged; anything else cannot skip preprocessing."""
    if gray.shape != (MNIST_SIDE, MNIST_SIDE):
        height, width = gray.shape
        raise BadPreprocessError(
            f"preprocess=none needs an image of exactly {MNIST_SIDE}x{MNIST_SIDE} pixels, "
            f"this one is {width}x{height}; use preprocess=auto or mnist"
        )
    return gray


def _is_mnist_like(gray: np.ndarray) -> bool:
    """True for a 28x28 light-on-dark image, which already looks like MNIST."""
    return gray.shape == (MNIST_SIDE, MNIST_SIDE) and _background(gray) < 0.5


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """Normalise a photo, scan or drawing of one digit the way MNIST was built.

    Light digit on black, contrast stretched, longer side scaled to 20 px and
    the centre of mass at (14, 14) of a 28x28 field. Raises `NoDigitError`
    when nothing stands out from the background.
    """
    ink = _ink(_as_gray(gray))
    mask = _digit_mask(ink)
    ink = _stretch(np.where(mask, ink, 0.0), mask)
    return _centre_by_mass(_fit_box(_crop(ink)))


def _border(gray: np.ndarray) -> np.ndarray:
    """Pixels of a band ~5% wide (at least 1 px) around the edge of the image."""
    band_y = max(1, int(gray.shape[0] * BORDER_FRACTION))
    band_x = max(1, int(gray.shape[1] * BORDER_FRACTION))
    return np.concatenate(
        [
            gray[:band_y].ravel(),
            gray[-band_y:].ravel(),
            gray[:, :band_x].ravel(),
            gray[:, -band_x:].ravel(),
        ]
    )


def _background(gray: np.ndarray) -> float:
    """Background level: the median of the border band, which a centred digit rarely touches."""
    return _quantile(_border(gray), 0.5)


def _quantile(values: np.ndarray, fraction: float) -> float:
    """The value at `fraction` of the sorted values (nearest rank; O(n), unlike np.percentile)."""
    rank = int(fraction * (values.size - 1))
    return float(np.partition(values, rank)[rank])


def _ink(gray: np.ndarray) -> np.ndarray:
    """Make the digit light on a black background: invert light paper, subtract its level."""
    background = _background(gray)
    if background > 0.5:
        gray, background = 1.0 - gray, 1.0 - background
    return np.maximum(gray - background, 0.0)


def _digit_mask(ink: np.ndarray) -> np.ndarray:
    """Pixels belonging to the digit: Otsu threshold on a 3x3-blurred copy.

    The blur keeps isolated noise pixels from passing the threshold and
    stretching the bounding box, and widens the mask just enough to keep the
    anti-aliased edges of the strokes. On blank (even noisy) paper Otsu can
    only split the noise, so the pixels above the threshold stay faint: that,
    or no pixel standing out at all, means there is no digit.
    """
    blurred = _box_blur3(ink)
    peak = float(blurred.max())
    if peak < MIN_CONTRAST:
        raise NoDigitError(BLANK_MESSAGE)
    mask = blurred >= _otsu_threshold(blurred, peak)
    if float(blurred[mask].mean()) < MIN_CONTRAST:
        raise NoDigitError(BLANK_MESSAGE)
    return mask


def _box_blur3(a: np.ndarray) -> np.ndarray:
    """3x3 mean filter with edge replication (separable, numpy only)."""
    return _sum3(_sum3(a).T).T / 9.0


def _sum3(a: np.ndarray) -> np.ndarray:
    """Sum of each row with its upper and lower neighbours, edges replicated."""
    out = a.copy()
    out[1:] += a[:-1]
    out[:-1] += a[1:]
    out[0] += a[0]
    out[-1] += a[-1]
    return out


def _otsu_threshold(values: np.ndarray, peak: float) -> float:
    """Otsu's threshold over 256 levels spanning [0, peak]; `peak` must be > 0."""
    levels = np.minimum((values * (255.0 / peak)).astype(np.intp), 255)
    hist = np.bincount(levels.ravel(), minlength=256).astype(np.float64)
    weight0 = np.cumsum(hist)
    mass0 = np.cumsum(hist * np.arange(256))
    total, total_mass = weight0[-1], mass0[-1]
    spread = weight0 * (total - weight0)
    between = np.divide(
        (total_mass * weight0 - mass0 * total) ** 2,
        spread,
        out=np.zeros_like(spread),
        where=spread > 0,
    )
    return (int(np.argmax(between)) + 1) * peak / 255.0


def _stretch(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Scale so the digit's strong strokes reach 1.0, as MNIST's do; faint paper noise stays faint."""
    level = max(_quantile(ink[mask], STROKE_QUANTILE), MIN_CONTRAST)
    return np.minimum(ink / level, 1.0)


def _crop(ink: np.ndarray) -> np.ndarray:
    """Cut the image down to the bounding box of its non-zero pixels."""
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    if rows.size == 0:
        raise NoDigitError(BLANK_MESSAGE)
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _fit_box(digit: np.ndarray) -> np.ndarray:
    """Resize (anti-aliased) so the longer side is 20 px, keeping the aspect ratio."""
    height, width = digit.shape
    scale = MNIST_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(np.ascontiguousarray(digit)).resize(size, Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _centre_by_mass(digit: np.ndarray) -> np.ndarray:
    """Paste into 28x28 with the centre of mass at (14, 14), never pushing pixels off the edge.

    The offset keeps its fractional part (bilinear sub-pixel shift): with whole
    pixels, thin strokes can land a pixel away from where MNIST would put them.
    """
    height, width = digit.shape
    total = float(digit.sum())
    if total <= 0:
        raise NoDigitError(BLANK_MESSAGE)
    com_y = float(digit.sum(axis=1) @ np.arange(height)) / total
    com_x = float(digit.sum(axis=0) @ np.arange(width)) / total
    top = min(max(MNIST_CENTRE - com_y, 0.0), float(MNIST_SIDE - height))
    left = min(max(MNIST_CENTRE - com_x, 0.0), float(MNIST_SIDE - width))
    shifted = _shift_fraction(digit, top % 1.0, left % 1.0)
    out = np.zeros((MNIST_SIDE + 1, MNIST_SIDE + 1), dtype=np.float32)
    out[int(top) : int(top) + height + 1, int(left) : int(left) + width + 1] = shifted
    return out[:MNIST_SIDE, :MNIST_SIDE]


def _shift_fraction(digit: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Shift down/right by fractions of a pixel (bilinear) into a one-pixel-larger array."""
    height, width = digit.shape
    padded = np.zeros((height + 1, width + 1), dtype=np.float32)
    padded[:height, :width] = digit
    rows = padded * (1.0 - dy)
    rows[1:] += padded[:-1] * dy
    out = rows * (1.0 - dx)
    out[:, 1:] += rows[:, :-1] * dx
    return out
