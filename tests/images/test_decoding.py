"""Specification of service.images.decoding: safe decoding of uploads and MNIST-style normalisation."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.images.decoding import (
    DEFAULT_FORMATS,
    MAX_WORKING_SIDE,
    PREPROCESS_MODES,
    AspectRatioError,
    BadPreprocessError,
    CorruptImageError,
    ImageError,
    ImageTooLargeError,
    NoDigitError,
    UnsupportedFormatError,
    decode,
    prepare,
    to_mnist,
)
from tests.helpers import png_claiming

MAX_PIXELS = 20_000_000
QUALITY_DIGITS = 200


# --- helpers ----------------------------------------------------------------


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    """A Pillow image as file bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gray_image(pixels: np.ndarray) -> Image.Image:
    """A uint8 array as an 'L' image."""
    return Image.fromarray(np.asarray(pixels, dtype=np.uint8))


def drawn_seven(size: tuple[int, int] = (120, 160), ink: int = 0, paper: int = 255) -> np.ndarray:
    """A thick '7' drawn with ImageDraw: a uint8 array (height, width)."""
    width, height = size
    image = Image.new("L", size, paper)
    draw = ImageDraw.Draw(image)
    draw.line([(0.25 * width, 0.2 * height), (0.75 * width, 0.2 * height)], fill=ink, width=max(1, width // 12))
    draw.line([(0.75 * width, 0.2 * height), (0.4 * width, 0.8 * height)], fill=ink, width=max(1, width // 12))
    return np.asarray(image)


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) centre of mass of a non-negative image."""
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two images."""
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


@pytest.fixture(scope="module")
def mnist_digits(mnist_test) -> np.ndarray:
    """The first real MNIST test digits (uint8, light on dark)."""
    return mnist_test[0][:QUALITY_DIGITS]


def photograph(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """An MNIST digit as a phone snap of paper: dark ink at 5x size, rotated, off-centre, noisy grey, JPEG."""
    ink = gray_image(digit).resize((140, 140), Image.Resampling.BILINEAR)
    ink = ink.rotate(rng.uniform(-8, 8), resample=Image.Resampling.BILINEAR, expand=True, fillcolor=0)
    ink_array = np.asarray(ink, dtype=np.float32) / 255
    canvas = np.zeros((220, 300), dtype=np.float32)
    top = rng.integers(0, canvas.shape[0] - ink_array.shape[0] + 1)
    left = rng.integers(0, canvas.shape[1] - ink_array.shape[1] + 1)
    canvas[top : top + ink_array.shape[0], left : left + ink_array.shape[1]] = ink_array
    paper = 0.85 * (1 - canvas) + rng.normal(0, 0.05, canvas.shape)
    return encode(gray_image(np.clip(paper, 0, 1) * 255 + 0.5), "JPEG", quality=85)


# --- decode: formats and modes ------------------------------------------------


def test_grayscale_png_decodes_to_float32_in_unit_range_with_white_as_one():
    pixels = np.array([[0, 128, 255]], dtype=np.uint8)
    gray = decode(encode(gray_image(pixels)), max_pixels=MAX_PIXELS)
    assert gray.dtype == np.float32
    np.testing.assert_allclose(gray, [[0.0, 128 / 255, 1.0]], atol=1e-6)


def test_rgb_png_is_converted_to_luminance():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[:, 0] = (255, 255, 255)
    rgb[:, 1] = (255, 0, 0)
    gray = decode(encode(Image.fromarray(rgb)), max_pixels=MAX_PIXELS)
    np.testing.assert_allclose(gray[0], [1.0, 0.299, 0.0], atol=0.01)


def test_rgba_transparent_background_is_composited_on_white():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[5:15, 8:12] = (0, 0, 0, 255)
    gray = decode(encode(Image.fromarray(rgba)), max_pixels=MAX_PIXELS)
    assert gray[0, 0] == 1.0
    assert gray[10, 10] == 0.0


def test_rgba_coloured_strokes_on_transparent_background_stay_dark_on_white():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[5:15, 8:12] = (0, 0, 200, 255)
    gray = decode(encode(Image.fromarray(rgba)), max_pixels=MAX_PIXELS)
    assert gray[0, 0] == 1.0
    assert gray[10, 10] < 0.1


def test_rgba_light_strokes_on_transparent_background_are_composited_on_black():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[5:15, 8:12] = (255, 255, 255, 255)
    gray = decode(encode(Image.fromarray(rgba)), max_pixels=MAX_PIXELS)
    assert gray[0, 0] == 0.0
    assert gray[10, 10] == 1.0


def test_rgba_half_transparent_pixel_is_blended_with_the_backdrop():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[5:15, 8:12] = (0, 0, 0, 255)
    rgba[0, 0] = (0, 0, 0, 128)
    gray = decode(encode(Image.fromarray(rgba)), max_pixels=MAX_PIXELS)
    assert gray[0, 0] == pytest.approx(1 - 128 / 255, abs=1e-6)


def test_la_png_alpha_is_composited_on_white():
    la = np.zeros((20, 20, 2), dtype=np.uint8)
    la[5:15, 8:12, 1] = 255
    gray = decode(encode(Image.fromarray(la, "LA")), max_pixels=MAX_PIXELS)
    assert gray[0, 0] == 1.0
    assert gray[10, 10] == 0.0


def test_palette_png_with_transparent_index_is_composited_on_white():
    image = Image.new("P", (20, 20), 0)
    image.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)
    image.paste(1, (8, 5, 12, 15))
    gray = decode(encode(image, transparency=0), max_pixels=MAX_PIXELS)
    assert gray[0, 0] == 1.0
    assert gray[10, 10] == 0.0


def test_palette_png_without_transparency_uses_the_palette_colours():
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    gray = decode(encode(image), max_pixels=MAX_PIXELS)
    assert gray[0, 0] == 0.0
    assert gray[3, 3] == 1.0


def test_sixteen_bit_png_is_scaled_by_the_full_16_bit_range():
    pixels = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(pixels))
    gray = decode(data, max_pixels=MAX_PIXELS)
    np.testing.assert_allclose(gray, [[0.0, 1000 / 65535, 32768 / 65535, 1.0]], atol=1e-6)


def test_one_bit_png_decodes_to_pure_black_and_white():
    image = Image.new("1", (8, 8), 1)
    image.putpixel((2, 3), 0)
    gray = decode(encode(image), max_pixels=MAX_PIXELS)
    assert gray[3, 2] == 0.0
    assert set(np.unique(gray)) == {0.0, 1.0}


def test_jpeg_decodes_close_to_the_original_pixels():
    pixels = drawn_seven()
    gray = decode(encode(gray_image(pixels), "JPEG", quality=95), max_pixels=MAX_PIXELS)
    assert gray.shape == pixels.shape
    assert np.abs(gray - pixels / 255).mean() < 0.02


def test_cmyk_jpeg_decodes_to_luminance():
    cmyk = np.zeros((32, 32, 4), dtype=np.uint8)
    cmyk[8:24, 8:24, 3] = 255
    gray = decode(encode(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95), max_pixels=MAX_PIXELS)
    assert gray[2, 2] > 0.9
    assert gray[16, 16] < 0.1


def test_animated_gif_uses_the_first_frame():
    first = gray_image(np.full((16, 16), 255))
    first.paste(0, (0, 0, 8, 16))
    second = gray_image(np.full((16, 16), 255))
    second.paste(0, (8, 0, 16, 16))
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    gray = decode(data, max_pixels=MAX_PIXELS)
    assert gray[8, 2] == 0.0
    assert gray[8, 12] == 1.0


def test_bmp_decodes_exactly():
    pixels = drawn_seven((40, 50))
    gray = decode(encode(gray_image(pixels), "BMP"), max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(gray, pixels / np.float32(255))


def test_lossless_webp_decodes_exactly():
    pixels = drawn_seven((40, 50))
    gray = decode(encode(gray_image(pixels), "WEBP", lossless=True), max_pixels=MAX_PIXELS)
    np.testing.assert_array_equal(gray, pixels / np.float32(255))


def test_exif_orientation_6_rotates_the_image_upright():
    stored = np.full((20, 40), 255, dtype=np.uint8)
    stored[:8, :8] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(gray_image(stored), "JPEG", quality=95, exif=exif.tobytes())
    gray = decode(data, max_pixels=MAX_PIXELS)
    assert gray.shape == (40, 20)
    assert gray[:6, -6:].mean() < 0.1
    assert gray[:6, :6].mean() > 0.9


def test_huge_jpeg_is_decoded_at_reduced_size():
    photo = Image.fromarray(drawn_seven((4000, 3000))).convert("RGB")
    data = encode(photo, "JPEG", quality=85)
    gray = decode(data, max_pixels=MAX_PIXELS)
    assert min(gray.shape) >= 560
    assert max(gray.shape) < 4000
    assert prepare(gray).shape == (28, 28)


def test_huge_png_is_averaged_down_keeping_both_sides_at_least_560():
    pixels = np.full((1300, 2600), 255, dtype=np.uint8)
    pixels[400:900, 1000:1400] = 0
    gray = decode(encode(gray_image(pixels)), max_pixels=MAX_PIXELS)
    assert gray.shape == (650, 1300)
    assert gray[300, 600] == 0.0 and gray[10, 10] == 1.0


# --- decode: refusals ------------------------------------------------------------


def test_empty_upload_is_corrupt():
    with pytest.raises(CorruptImageError, match="empty upload"):
        decode(b"", max_pixels=MAX_PIXELS)


def test_random_bytes_are_an_unsupported_format_naming_the_allowed_ones():
    data = np.random.default_rng(0).bytes(2000)
    with pytest.raises(UnsupportedFormatError) as caught:
        decode(data, max_pixels=MAX_PIXELS)
    assert all(name in caught.value.message for name in DEFAULT_FORMATS)


def test_format_outside_the_allowed_set_is_unsupported():
    data = encode(gray_image(drawn_seven()), "JPEG")
    with pytest.raises(UnsupportedFormatError, match="allowed formats: PNG"):
        decode(data, max_pixels=MAX_PIXELS, formats=frozenset({"PNG"}))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_image_is_corrupt(fmt):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)
    data = encode(gray_image(noise), fmt)
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        decode(data[: len(data) // 2], max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP"])
def test_image_cut_off_anywhere_is_refused_unless_all_its_pixels_arrived(fmt):
    noise = np.random.default_rng(2).integers(0, 256, (24, 24), dtype=np.uint8)
    data = encode(gray_image(noise), fmt)
    complete = decode(data, max_pixels=MAX_PIXELS)
    for end in range(1, len(data)):
        try:
            gray = decode(data[:end], max_pixels=MAX_PIXELS)
        except ImageError:
            continue
        np.testing.assert_array_equal(gray, complete)


def test_image_over_the_pixel_limit_is_refused_naming_limit_and_size():
    data = encode(gray_image(np.zeros((100, 300))))
    with pytest.raises(ImageTooLargeError) as caught:
        decode(data, max_pixels=10_000)
    assert "300x100" in caught.value.message
    assert "10,000" in caught.value.message


@pytest.mark.parametrize("side", [5_000, 10_000, 20_000])
def test_pixel_bomb_header_is_refused_before_decoding(side):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLargeError, match="too large"):
            decode(png_claiming(side, side), max_pixels=1_000_000)


def test_pillow_bomb_warning_escalated_to_error_is_still_too_large():
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLargeError):
            decode(png_claiming(10_000, 10_000), max_pixels=MAX_PIXELS * 10)


def test_image_errors_are_value_errors_carrying_their_message():
    error = NoDigitError("looks blank")
    assert isinstance(error, ValueError)
    assert error.message == str(error) == "looks blank"


# --- to_mnist / prepare ------------------------------------------------------------


@pytest.mark.parametrize("level", [0.0, 1.0, 0.6])
def test_uniform_image_has_no_digit(level):
    with pytest.raises(NoDigitError, match="blank"):
        to_mnist(np.full((60, 80), level, dtype=np.float32))


def test_noisy_blank_paper_has_no_digit():
    paper = np.random.default_rng(3).normal(0.85, 0.05, (220, 300))
    gray = decode(encode(gray_image(np.clip(paper, 0, 1) * 255), "JPEG", quality=85), max_pixels=MAX_PIXELS)
    with pytest.raises(NoDigitError):
        prepare(gray)


@pytest.mark.parametrize("shape", [(1, 1), (1, 10_000), (10_000, 1), (2, 3)])
@pytest.mark.parametrize("fill", ["uniform", "dark segment"])
def test_degenerate_shapes_give_no_digit_or_a_valid_input(shape, fill):
    gray = np.ones(shape, dtype=np.float32)
    if fill == "dark segment":
        gray.flat[gray.size // 3 : gray.size // 2 + 1] = 0.0
    try:
        result = prepare(gray)
    except NoDigitError:
        return
    assert result.shape == (28, 28)
    assert result.dtype == np.float32
    assert np.isfinite(result).all()


def test_a_ten_thousand_by_one_png_is_refused_naming_the_aspect_ratio_limit():
    pixels = np.full((1, 10_000), 255, dtype=np.uint8)
    with pytest.raises(AspectRatioError, match="more than 25 times"):
        decode(encode(gray_image(pixels)), max_pixels=MAX_PIXELS)


def test_a_sixteen_million_by_one_header_is_refused_before_pillow_reads_it():
    with pytest.raises(AspectRatioError):
        decode(png_claiming(16_000_000, 1), max_pixels=MAX_PIXELS)


def test_a_strip_within_the_aspect_ratio_limit_decodes_and_prepares():
    pixels = np.full((200, 4_000), 255, dtype=np.uint8)
    pixels[50:150, 1900:2000] = 0
    gray = decode(encode(gray_image(pixels)), max_pixels=MAX_PIXELS)
    assert max(gray.shape) <= MAX_WORKING_SIDE
    assert prepare(gray).shape == (28, 28)


def test_every_buffer_after_decoding_is_bounded_by_the_working_side_not_the_upload():
    pixels = np.full((400, 9_000), 255, dtype=np.uint8)
    pixels[100:300, 4000:4200] = 0
    gray = decode(encode(gray_image(pixels)), max_pixels=MAX_PIXELS)
    assert max(gray.shape) <= MAX_WORKING_SIDE


@pytest.mark.parametrize("seed", range(8))
def test_output_is_always_28x28_float32_within_unit_range(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(1, 300, size=2)
    gray = rng.random((height, width)).astype(np.float32) ** rng.uniform(0.2, 5)
    try:
        result = to_mnist(gray)
    except NoDigitError:
        return
    assert result.shape == (28, 28)
    assert result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0


def test_dark_digit_on_light_paper_becomes_light_on_black():
    result = to_mnist(drawn_seven() / 255)
    assert result[0].max() == 0.0 and result[:, 0].max() == 0.0
    assert result.max() > 0.9


def test_grey_noisy_paper_becomes_a_black_background():
    clean = to_mnist(drawn_seven() / 255)
    noise = np.random.default_rng(4).normal(0, 0.05, (160, 120))
    result = to_mnist(np.clip(0.55 * drawn_seven() / 255 + 0.3 + noise, 0, 1))
    assert result[clean == 0].max() == 0.0
    assert correlation(result, clean) > 0.98


def test_longer_side_is_scaled_to_20_pixels_keeping_the_aspect_ratio():
    gray = np.ones((300, 300), dtype=np.float32)
    gray[50:250, 120:170] = 0.0
    result = to_mnist(gray)
    rows = np.flatnonzero(result.max(axis=1) > 0.05)
    cols = np.flatnonzero(result.max(axis=0) > 0.05)
    assert 20 <= rows.size <= 21
    assert 5 <= cols.size <= 6


def test_digit_far_off_centre_ends_with_its_centre_of_mass_at_14_14():
    gray = np.ones((200, 200), dtype=np.float32)
    gray[10:50, 150:190] = drawn_seven((40, 40)) / 255
    result = to_mnist(gray)
    assert centre_of_mass(result) == pytest.approx((14.0, 14.0), abs=0.01)


def test_isolated_noise_specks_do_not_stretch_the_bounding_box():
    gray = drawn_seven((120, 160)) / 255
    clean = to_mnist(gray)
    specked = gray.copy()
    specked[[3, 150, 8, 155], [5, 110, 115, 4]] = 0.0
    assert correlation(to_mnist(specked), clean) > 0.99


def test_unknown_preprocess_mode_is_a_value_error_listing_the_modes():
    with pytest.raises(ValueError, match="auto, mnist, none"):
        prepare(np.zeros((28, 28), dtype=np.float32), "fancy")
    assert PREPROCESS_MODES == ("auto", "mnist", "none")


def test_mode_none_needs_exactly_28x28():
    with pytest.raises(BadPreprocessError, match="exactly 28x28.*40x30"):
        prepare(np.zeros((30, 40), dtype=np.float32), "none")


def test_mode_none_passes_28x28_through_unchanged_even_dark_on_light(mnist_digits):
    gray = (255 - mnist_digits[0]) / np.float32(255)
    np.testing.assert_array_equal(prepare(gray, "none"), gray)


def test_auto_passes_a_light_on_dark_mnist_digit_through_unchanged(mnist_digits):
    digit = mnist_digits[0]
    result = prepare(decode(encode(gray_image(digit)), max_pixels=MAX_PIXELS), "auto")
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, digit / np.float32(255))


def test_auto_normalises_a_dark_on_light_28x28_digit(mnist_digits):
    digit = mnist_digits[1]
    result = prepare(decode(encode(gray_image(255 - digit)), max_pixels=MAX_PIXELS), "auto")
    assert correlation(result, digit / 255) > 0.9


def test_mnist_mode_keeps_an_mnist_digit_nearly_as_it_is(mnist_digits):
    correlations = [correlation(prepare(d / np.float32(255), "mnist"), d / 255) for d in mnist_digits[:50]]
    assert np.mean(correlations) > 0.95


def test_photographed_mnist_digits_normalise_back_to_the_originals(mnist_digits):
    rng = np.random.default_rng(5)
    correlations, offsets = [], []
    for digit in mnist_digits:
        result = prepare(decode(photograph(digit, rng), max_pixels=MAX_PIXELS), "auto")
        correlations.append(correlation(result, digit / 255))
        offsets.append(np.subtract(centre_of_mass(result), 14.0))
    assert np.mean(correlations) >= 0.88
    assert np.percentile(correlations, 5) >= 0.75
    assert np.abs(offsets).max() <= 1.0
