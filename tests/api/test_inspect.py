"""POST /v1/inspect: everything the web page shows for one digit in one round trip, and the same numbers and pictures
as the single-purpose endpoints; and the page itself at /, open even when API keys are on."""

import base64
import io
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

from service.runtime.registry import LoadedModel
from tests.api.conftest import make_client
from tests.helpers import decode_png, encode, post_image

SPATIAL = {"conv1": [26, 26, 32], "conv2": [24, 24, 64], "pool": [12, 12, 64]}


def data_url_pixels(url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))
    assert image.format == "PNG" and image.mode == "L"
    return np.asarray(image)


def drawn_one(mode: str = "RGBA") -> bytes:
    """A "1" as the page's canvas sends it: a thick black stroke on 280x280, transparent or white around it."""
    image = Image.new(mode, (280, 280), (0, 0, 0, 0) if mode == "RGBA" else "white")
    ImageDraw.Draw(image).line([(150, 45), (137, 235)], fill="black", width=20)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def inspection(client, digit_png):
    response = post_image(client, "/v1/inspect", digit_png)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_class_is_that_of_classify(client, digit_png, inspection):
    classified = post_image(client, "/v1/classify", digit_png).json()
    assert inspection["model"] == "classifier"
    assert inspection["digit"] == classified["digit"] == 7
    assert np.allclose(inspection["probabilities"], classified["probabilities"], atol=1e-6)


def test_every_spatial_layer_comes_in_graph_order_with_its_shape(inspection):
    assert [(layer["layer"], layer["shape"]) for layer in inspection["layers"]] == list(SPATIAL.items())


@pytest.mark.parametrize("layer", list(SPATIAL))
def test_norms_threshold_and_active_filters_are_those_of_active_filters(client, digit_png, inspection, layer):
    inspected = next(item for item in inspection["layers"] if item["layer"] == layer)
    expected = post_image(client, f"/v1/active-filters/{layer}", digit_png).json()
    assert inspected["active"] == expected["active"] and inspected["active"]
    assert np.allclose(inspected["norms"], expected["norms"], rtol=1e-6)
    assert inspected["threshold"] == pytest.approx(expected["threshold"], rel=1e-6)
    assert (inspected["norm"], inspected["threshold_rule"]) == ("l2", "mean")


def test_threshold_and_norm_options_are_those_of_active_filters(client, digit_png):
    options = {"threshold": "median", "norm": "l1"}
    inspected = post_image(client, "/v1/inspect", digit_png, **options).json()["layers"][1]
    expected = post_image(client, "/v1/active-filters/conv2", digit_png, **options).json()
    assert inspected["active"] == expected["active"]
    assert (inspected["norm"], inspected["threshold_rule"]) == ("l1", "median")


@pytest.mark.parametrize("layer", list(SPATIAL))
def test_the_grid_is_the_activation_grid_png_with_its_geometry(client, digit_png, inspection, layer):
    inspected = next(item for item in inspection["layers"] if item["layer"] == layer)
    grid = inspected["grid"]
    height, width, count = SPATIAL[layer]
    columns = math.ceil(math.sqrt(count))
    assert grid["columns"] == columns and grid["rows"] == math.ceil(count / columns)
    assert grid["tile"] == [height, width] and grid["pad"] == 1
    assert (
        grid["width"] == columns * width + (columns - 1) and grid["height"] == grid["rows"] * height + grid["rows"] - 1
    )
    pixels = data_url_pixels(grid["image"])
    assert pixels.shape == (grid["height"], grid["width"])
    expected = np.asarray(decode_png(post_image(client, f"/v1/activations/{layer}", digit_png, format="png", scale=1)))
    assert np.array_equal(pixels, expected)
    # filter k's tile sits where the geometry says: compare one map with /v1/activations/{layer}/{k}
    k = inspected["active"][-1]
    row, column = divmod(k, columns)
    y, x = row * (height + 1), column * (width + 1)
    single = np.asarray(
        decode_png(post_image(client, f"/v1/activations/{layer}/{k}", digit_png, format="png", scale=1))
    )
    assert np.array_equal(pixels[y : y + height, x : x + width], single)


def test_the_input_is_the_digit_the_network_saw(inspection, mnist_test):
    assert np.abs(data_url_pixels(inspection["input"]).astype(int) - mnist_test[0][0]).max() <= 1


def test_the_reconstruction_is_that_of_the_autoencoder(client, digit_png, inspection):
    expected = np.asarray(decode_png(post_image(client, "/v1/autoencoder/reconstruct", digit_png, scale=1)))
    assert np.array_equal(data_url_pixels(inspection["reconstruction"]), expected)


def test_one_inference_per_model(client, digit_png, monkeypatch):
    calls = []
    original = LoadedModel.run

    def counting(self, images, outputs):
        calls.append((self.name, tuple(outputs)))
        return original(self, images, outputs)

    monkeypatch.setattr(LoadedModel, "run", counting)
    assert post_image(client, "/v1/inspect", digit_png).status_code == 200
    classifier = ("output", "digit_like_score", "conv1", "conv2", "pool")  # the judge's score from the same run
    assert calls == [("classifier", classifier), ("autoencoder", ("decoded",))]


@pytest.mark.parametrize("mode", ["RGBA", "RGB"])
def test_a_canvas_drawing_is_prepared_like_mnist(client, mode):
    drawing = drawn_one(mode)
    inspected = post_image(client, "/v1/inspect", drawing).json()
    assert inspected["digit"] == post_image(client, "/v1/classify", drawing).json()["digit"] == 1


def test_multipart_uploads_work_too(client, digit_png):
    response = client.post("/v1/inspect", files={"image": ("seven.png", digit_png, "image/png")})
    assert response.status_code == 200 and response.json()["digit"] == 7


def test_a_blank_canvas_is_422_saying_so(client):
    response = post_image(client, "/v1/inspect", encode(np.full((280, 280), 255, np.uint8)))
    assert response.status_code == 422
    assert "blank" in response.json()["error"]


def test_it_is_documented_in_openapi(client):
    operation = client.get("/openapi.json").json()["paths"]["/v1/inspect"]["post"]
    assert operation["summary"].startswith("Everything about one digit")
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Inspection"
    }
    assert {"401", "413", "415", "422"} <= set(operation["responses"])


@pytest.mark.parametrize(
    "path, media_type",
    [
        ("/", "text/html"),
        ("/index.html", "text/html"),
        ("/convlens.js", "text/javascript"),
        ("/convlens-api.js", "text/javascript"),
        ("/convlens.css", "text/css"),
    ],
)
def test_the_page_is_served(client, path, media_type):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)


def test_the_page_is_not_an_api_operation(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/convlens.js" not in paths


def test_with_api_keys_the_page_stays_open_and_inspect_needs_a_key(digit_png):
    with make_client(api_keys=["page-key"]) as keyed:
        assert keyed.get("/").status_code == 200
        assert keyed.get("/convlens.js").status_code == 200
        assert post_image(keyed, "/v1/inspect", digit_png).status_code == 401
        answer = keyed.post(
            "/v1/inspect", content=digit_png, headers={"content-type": "image/png", "x-api-key": "page-key"}
        )
        assert answer.status_code == 200 and answer.json()["digit"] == 7


def test_another_origin_may_call_it(client, digit_png):
    preflight = client.options(
        "/v1/inspect",
        headers={
            "origin": "http://elsewhere.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-api-key",
        },
    )
    assert preflight.status_code == 200
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    response = client.post(
        "/v1/inspect", content=digit_png, headers={"content-type": "image/png", "origin": "http://elsewhere.example"}
    )
    assert response.headers["access-control-allow-origin"] == "*"
