"""Every kind of bad request gets a JSON error with the right 4xx status and a message a person can act on."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from tests.api.conftest import make_client
from tests.helpers import encode, png_claiming, post_image


def assert_error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert fragment in body["error"], body["error"]


def test_unknown_model_is_404_listing_the_models(client, digit_png):
    assert_error(
        post_image(client, "/v1/classify", digit_png, model="vgg"),
        404,
        "unknown model 'vgg'; available: classifier, autoencoder",
    )


def test_unknown_layer_is_404_listing_the_layers(client, digit_png):
    assert_error(
        post_image(client, "/v1/activations/conv3", digit_png),
        404,
        "model 'classifier' has no layer 'conv3'; layers: conv1, conv2, pool, dense1, output",
    )


@pytest.mark.parametrize("url", ["/v1/activations/conv1/32", "/v1/deconvolution/conv2/64", "/v1/deconvolution/pool/-1"])
def test_filter_out_of_range_is_422_with_the_valid_range(client, digit_png, url):
    response = post_image(client, url, digit_png)
    assert response.status_code == 422
    assert "is out of range: layer" in response.json()["error"]


def test_wrong_content_type_is_415_saying_what_to_send(client):
    assert_error(
        client.post("/v1/classify", content=b"hello", headers={"content-type": "text/plain"}),
        415,
        "send multipart/form-data with the field 'image'",
    )


def test_wrong_multipart_field_name_is_422_naming_the_fields_sent(client, digit_png):
    assert_error(
        client.post("/v1/classify", files={"file": ("a.png", digit_png, "image/png")}),
        422,
        "multipart form has no file field 'image' (fields sent: file)",
    )


def test_empty_body_is_400(client):
    assert_error(post_image(client, "/v1/classify", b""), 400, "empty upload")


def test_random_bytes_are_415(client):
    assert_error(post_image(client, "/v1/classify", np.random.default_rng(1).bytes(2000)), 415, "PNG")


def test_truncated_png_is_400(client):
    data = encode(np.random.default_rng(2).integers(0, 255, (200, 200), dtype=np.uint8))
    response = post_image(client, "/v1/classify", data[: len(data) // 2])
    assert response.status_code == 400 and response.json()["error"]


def test_upload_over_the_byte_limit_is_413_even_without_content_length(digit_png):
    with make_client(max_upload_bytes=100) as small:
        assert_error(post_image(small, "/v1/classify", digit_png), 413, "over the limit of 100 bytes")
        chunked = small.post(
            "/v1/classify", content=iter([digit_png[:80], digit_png[80:]]), headers={"content-type": "image/png"}
        )
        assert_error(chunked, 413, "over the limit of 100 bytes")


def test_decompression_bomb_is_413_before_decoding(client):
    assert_error(post_image(client, "/v1/classify", png_claiming(30000, 30000)), 413, "the limit is 16,000,000 pixels")


def test_blank_image_is_422_saying_there_is_no_digit(client):
    response = post_image(client, "/v1/classify", encode(np.full((100, 100), 255, np.uint8)))
    assert response.status_code == 422
    assert "blank" in response.json()["error"]


def test_format_outside_the_allowed_set_is_415(digit_png):
    bmp = io.BytesIO()
    Image.open(io.BytesIO(digit_png)).save(bmp, "BMP")
    with make_client(image_formats=["PNG"]) as strict:
        assert_error(post_image(strict, "/v1/classify", bmp.getvalue(), "image/bmp"), 415, "PNG")


@pytest.mark.parametrize("scale", [0, -3, 1000])
def test_scale_out_of_bounds_is_422(client, digit_png, scale):
    assert_error(
        post_image(client, "/v1/deconvolution/conv1/0", digit_png, scale=scale), 422, "scale must be between 1 and 32"
    )


def test_a_picture_over_the_output_pixel_limit_is_422_naming_a_scale_that_fits(client, digit_png):
    response = post_image(client, "/v1/activations/conv2", digit_png, format="png", scale=32)
    assert_error(response, 422, "CONVLENS_MAX_OUTPUT_PIXELS")
    fits = int(re.search(r"ask for scale (\d+) or less", response.json()["error"]).group(1))
    assert post_image(client, "/v1/activations/conv2", digit_png, format="png", scale=fits).status_code == 200
    assert post_image(client, "/v1/activations/conv2", digit_png, format="png", scale=fits + 1).status_code == 422


def test_the_output_pixel_limit_counts_every_picture_of_a_request(digit_png):
    with make_client(max_output_pixels=65_536) as strict:
        assert post_image(strict, "/v1/deconvolution/conv1/0", digit_png, scale=8).status_code == 200
        assert_error(post_image(strict, "/v1/deconvolution/conv1/0", digit_png, scale=10), 422, "65,536")


def test_unknown_format_value_is_422(client, digit_png):
    assert_error(post_image(client, "/v1/activations/conv1", digit_png, format="gif"), 422, "format")


def test_preprocess_none_needs_a_28x28_image(client):
    response = post_image(client, "/v1/classify", encode(np.zeros((40, 40), np.uint8)), preprocess="none")
    assert response.status_code == 422 and "28x28" in response.json()["error"]


def test_unknown_route_is_a_json_404(client):
    assert_error(client.get("/v9/nothing"), 404, "no such endpoint")


def test_service_stays_healthy_after_bad_requests(client, digit_png):
    post_image(client, "/v1/classify", b"\x89PNG broken")
    assert client.get("/healthz").json() == {"status": "ok"}
    assert post_image(client, "/v1/classify", digit_png).status_code == 200


def rgb_digit(mnist_test, index: int = 0, size: int = 140) -> Image.Image:
    """A real test digit, dark ink on white paper, as a person would photograph it."""
    return Image.fromarray(255 - mnist_test[0][index]).resize((size, size), Image.BICUBIC)


def saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_truncated_jpeg_is_400(client, mnist_test):
    data = saved(rgb_digit(mnist_test).convert("RGB"), "JPEG", quality=90)
    assert_error(post_image(client, "/v1/classify", data[: len(data) // 2], "image/jpeg"), 400, "truncated")


def test_all_black_image_is_422_saying_there_is_no_digit(client):
    response = post_image(client, "/v1/classify", encode(np.zeros((60, 60), np.uint8)))
    assert response.status_code == 422 and "blank" in response.json()["error"]


@pytest.mark.parametrize("shape", [(1, 1), (1, 10000)])
def test_degenerate_dimensions_get_a_clear_4xx(client, shape):
    response = post_image(client, "/v1/classify", encode(np.full(shape, 255, np.uint8)))
    assert response.status_code == 422 and response.json()["error"]
    assert client.get("/healthz").status_code == 200


def test_an_image_with_a_lying_content_type_is_read_by_its_bytes(client, mnist_test):
    jpeg = saved(rgb_digit(mnist_test).convert("RGB"), "JPEG", quality=90)
    assert post_image(client, "/v1/classify", jpeg, "image/png").json()["digit"] == 7


@pytest.mark.parametrize("variant", ["palette", "16-bit", "cmyk-jpeg", "animated-gif", "exif-rotated"])
def test_unusual_but_valid_images_are_classified(client, mnist_test, variant):
    digit = rgb_digit(mnist_test)
    if variant == "palette":
        data, kind = saved(digit.convert("RGB").convert("P", palette=Image.ADAPTIVE), "PNG"), "image/png"
    elif variant == "16-bit":
        data, kind = saved(Image.fromarray(np.asarray(digit).astype(np.uint16) * 257), "PNG"), "image/png"
    elif variant == "cmyk-jpeg":
        data, kind = saved(digit.convert("CMYK"), "JPEG", quality=95), "image/jpeg"
    elif variant == "animated-gif":
        blank = Image.new("L", digit.size, 255)
        data, kind = saved(digit, "GIF", save_all=True, append_images=[blank, blank], duration=100), "image/gif"
    else:
        exif = Image.Exif()
        exif[0x0112] = 6
        data, kind = saved(digit.rotate(90, expand=True).convert("RGB"), "JPEG", quality=95, exif=exif), "image/jpeg"
    response = post_image(client, "/v1/classify", data, kind)
    assert response.status_code == 200, response.text
    assert response.json()["digit"] == 7


def test_unknown_preprocess_value_is_422_listing_the_choices(client, digit_png):
    assert_error(post_image(client, "/v1/classify", digit_png, preprocess="magic"), 422, "'auto', 'mnist' or 'none'")


def test_two_image_fields_on_single_classify_get_a_422_pointing_to_the_batch_endpoint(client, digit_png):
    response = client.post("/v1/classify", files=[("image", ("a.png", digit_png)), ("image", ("b.png", digit_png))])
    assert_error(response, 422, "/v1/classify/batch")


def test_an_npy_header_with_a_boolean_in_its_shape_is_a_400(client):
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 28, 28), np.uint8))
    forged = buffer.getvalue().replace(b"'shape': (2, 28, 28)", b"'shape': (True, 28, 28)")
    response = client.post("/v1/classify/batch", content=forged, headers={"content-type": "application/x-npy"})
    assert_error(response, 400, "not a tuple of sizes")


def test_a_malformed_multipart_body_is_a_400(client):
    response = client.post(
        "/v1/classify", content=b"--x\r\nnot a part", headers={"content-type": "multipart/form-data; boundary=x"}
    )
    assert response.status_code in (400, 422) and response.json()["error"]
