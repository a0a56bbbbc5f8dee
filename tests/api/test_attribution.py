"""POST /v1/attribution/{method} (and /batch) through the real app on the shipped ONNX model: the HTTP answers equal
the core's math (``service.attribution``, checked against TensorFlow and Captum in tests/attribution), the errors
say what to change, a batch equals its singles, and the heat map's pixels follow the documented colour maps."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import onnx
import pytest
from PIL import Image

from service.attribution import METHODS, classifier_weights
from service.attribution.faithfulness import faithfulness
from service.attribution.placement import to_input_size
from service.pictures.heatmap import DIVERGING, SEQUENTIAL
from service.runtime.registry import load_registry
from tests.api.conftest import make_client
from tests.helpers import MODELS, encode, served_models

PARAMETERS = {"integrated-gradients": {"steps": 16}, "smoothgrad": {"samples": 8, "noise": 0.1, "seed": 3}}


@pytest.fixture(scope="module")
def core():
    """The shipped classifier and its weights, loaded apart from the app."""
    model = load_registry(MODELS, variants=False).models["classifier"]
    return model, classifier_weights(onnx.load(str(MODELS / "classifier.onnx")))


@pytest.fixture(scope="module")
def digits(mnist_test):
    images, labels = mnist_test
    return images[:4], labels[:4]


def _map(core, image: np.ndarray, method: str, target: int, **parameters):
    model, weights = core
    x = image[None].astype(np.float32) / 255
    result = METHODS[method].compute(model.run, weights, x, np.array([target]), **parameters)
    return result


# ReLU(...) maps and RISE's probability-weighted masks hold no negative value
UNSIGNED = {
    *("grad-cam", "grad-cam-plus-plus", "hires-cam", "xgrad-cam", "layer-cam"),
    *("score-cam", "eigen-cam", "ablation-cam", "rise"),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_the_json_answer_is_the_cores_map_for_the_predicted_class(client, core, digits, method):
    image, label = digits[0][0], int(digits[1][0])
    parameters = PARAMETERS.get(method, {})
    response = client.post(
        f"/v1/attribution/{method}", params={"format": "json", **parameters}, files={"image": encode(image)}
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["target"] == answer["predicted"] == label and answer["method"] == method
    probabilities = core[0].run(image[None].astype(np.float32) / 255, ["output"])["output"][0]
    assert answer["probability"] == pytest.approx(float(probabilities[label]), rel=1e-5)
    expected = _map(core, image, method, label, **parameters)
    if method == "occlusion":
        np.testing.assert_allclose(answer["values"], expected.grid[0], atol=1e-6)
        np.testing.assert_allclose(answer["pixels"], expected.pixels[0], atol=1e-6)
        assert answer["parameters"] == {"patch": 4, "stride": 2, "fill": 0.0} and answer["shape"] == [13, 13]
    else:
        np.testing.assert_allclose(answer["values"], expected[0], rtol=1e-5, atol=1e-6 * np.abs(expected).max())
        assert answer["shape"] == list(expected.shape[1:])
        assert answer["signed"] is (method not in UNSIGNED)
    for name, value in parameters.items():
        assert answer["parameters"][name] == value


def test_another_target_explains_that_class(client, core, digits):
    image = digits[0][0]
    answer = client.post(
        "/v1/attribution/saliency", params={"format": "json", "target": 1}, files={"image": encode(image)}
    ).json()
    assert answer["target"] == 1 and answer["predicted"] == 7
    np.testing.assert_allclose(answer["values"], _map(core, image, "saliency", 1)[0], rtol=1e-5, atol=1e-7)


def test_faithfulness_adds_this_maps_deletion_area(client, core, digits):
    image = digits[0][0]
    answer = client.post(
        "/v1/attribution/gradient-x-input",
        params={"format": "json", "faithfulness": "true"},
        files={"image": encode(image)},
    ).json()
    expected = faithfulness(
        core[0].run, image[None].astype(np.float32) / 255, np.array([7]), _map(core, image, "gradient-x-input", 7)
    )
    assert answer["faithfulness"]["deletion_auc"] == pytest.approx(float(expected.deletion_auc[0]), abs=1e-6)
    assert answer["faithfulness"]["random_deletion_auc"] == pytest.approx(float(expected.random_deletion_auc[0]))
    assert answer["faithfulness"]["deletion_auc"] < answer["faithfulness"]["random_deletion_auc"]


@pytest.mark.parametrize(
    ("path", "params", "status", "message"),
    [
        ("bogus", {}, 404, "methods: saliency, gradient-x-input, guided-backprop, integrated-gradients"),
        ("grad-cam", {"layer": "dense1"}, 404, "layers: conv1, conv2, pool"),
        ("saliency", {"target": 10}, 422, "target must be a class 0-9"),
        ("integrated-gradients", {"steps": 65}, 422, "steps must be an integer in [2, 64]"),
        ("smoothgrad", {"samples": 0}, 422, "samples must be an integer in [1, 50]"),
        ("occlusion", {"patch": 0}, 422, "patch must be an integer in [1, 28]"),
        ("occlusion", {"stride": 29}, 422, "stride must be an integer in [1, 28]"),
        ("occlusion", {"patch": 1, "stride": 1}, 422, "784 squares; at most 196"),
        ("grad-cam", {"model": "autoencoder"}, 422, "does not classify"),
        ("saliency", {"model": "nope"}, 404, "unknown model"),
    ],
)
def test_bad_requests_say_what_to_change(client, digits, path, params, status, message):
    response = client.post(f"/v1/attribution/{path}", params=params, files={"image": encode(digits[0][0])})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_a_noise_of_minus_zero_is_no_noise(client, digits):
    image = encode(digits[0][0])
    answers = [
        client.post(
            "/v1/attribution/smoothgrad",
            params={"noise": noise, "samples": 2, "format": "json"},
            files={"image": image},
        )
        for noise in ("-0", "0")
    ]
    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    assert answers[0].json()["values"] == answers[1].json()["values"]


def test_the_limits_are_settings(digits):
    with make_client(max_attribution_steps=8, max_occlusion_squares=1000) as client:
        image = {"image": encode(digits[0][0])}
        assert client.post("/v1/attribution/integrated-gradients", params={"steps": 9}, files=image).status_code == 422
        assert (
            client.post("/v1/attribution/occlusion", params={"patch": 1, "stride": 1}, files=image).status_code == 200
        )


def _npy(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, images)
    return buffer.getvalue()


@pytest.mark.parametrize("method", ["saliency", "grad-cam", "occlusion", "integrated-gradients"])
def test_a_batch_equals_its_singles_in_json_and_npy(client, digits, method):
    images = digits[0]
    parameters = PARAMETERS.get(method, {})
    body, npy = _npy(images), {"content-type": "application/x-npy"}
    batch = client.post(f"/v1/attribution/{method}/batch", params=parameters, content=body, headers=npy)
    assert batch.status_code == 200, batch.text
    answer = batch.json()
    assert answer["count"] == len(images)
    raw = client.post(
        f"/v1/attribution/{method}/batch",
        params=parameters,
        content=body,
        headers={**npy, "accept": "application/x-npy"},
    )
    assert raw.headers["content-type"] == "application/x-npy"
    array = np.load(io.BytesIO(raw.content))
    assert array.shape == (len(images), *answer["shape"]) and array.dtype == np.float32
    assert raw.headers["x-attribution-target"] == ",".join(str(int(label)) for label in digits[1])
    for image, item, values in zip(images, answer["results"], array):
        single = client.post(
            f"/v1/attribution/{method}", params={"format": "json", **parameters}, files={"image": encode(image)}
        ).json()
        assert item["target"] == single["target"]
        scale = max(np.abs(single["values"]).max(), 1e-12)
        np.testing.assert_allclose(item["values"], single["values"], atol=1e-5 * scale)
        np.testing.assert_allclose(values, single["values"], atol=1e-5 * scale)
        if method == "occlusion":
            np.testing.assert_allclose(item["pixels"], single["pixels"], atol=1e-6)


def test_a_batch_over_the_work_limit_is_refused(client, digits):
    body = _npy(np.repeat(digits[0], 20, axis=0))  # 80 images x 170 evaluations > 10,000
    response = client.post(
        "/v1/attribution/occlusion/batch", content=body, headers={"content-type": "application/x-npy"}
    )
    assert response.status_code == 413 and "limit is 10,000" in response.json()["error"]


def _png(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.content)))


def test_a_signed_map_is_drawn_on_a_diverging_colour_map_centred_on_zero(client, core, digits):
    image = digits[0][0]
    response = client.post(
        "/v1/attribution/saliency", params={"scale": 2, "labels": "false"}, files={"image": encode(image)}
    )
    pixels = _png(response)
    assert pixels.shape == (56, 56, 3)
    assert response.headers["x-colormap"] == "diverging"
    low, high = map(float, response.headers["x-colormap-range"].split(","))
    values = _map(core, image, "saliency", 7)[0]
    assert high == pytest.approx(np.abs(values).max(), rel=1e-5) and low == -high
    strongest = np.unravel_index(np.abs(values).argmax(), values.shape)
    colour = pixels[2 * strongest[0], 2 * strongest[1]]
    end = DIVERGING[-1][1] if values[strongest] > 0 else DIVERGING[0][1]
    assert np.abs(colour.astype(int) - end).max() <= 1  # full colour at the strongest pixel
    quiet = np.argwhere((np.abs(values) < 1e-7) & (image == 0))
    if len(quiet):  # zero attribution on the black background: the input shows through
        r, c = quiet[0]
        assert pixels[2 * r, 2 * c].tolist() == [0, 0, 0]


def test_grad_cam_is_drawn_at_input_size_on_a_sequential_colour_map(client, core, digits):
    image = digits[0][0]
    response = client.post(
        "/v1/attribution/grad-cam", params={"scale": 1, "labels": "false"}, files={"image": encode(image)}
    )
    pixels = _png(response)
    assert pixels.shape == (28, 28, 3) and response.headers["x-colormap"] == "sequential"
    values = to_input_size(_map(core, image, "grad-cam", 7)[0])
    low, high = map(float, response.headers["x-colormap-range"].split(","))
    assert low == 0 and high == pytest.approx(values.max(), rel=1e-5)
    r, c = np.unravel_index(values.argmax(), values.shape)
    assert pixels[r, c].tolist() == list(SEQUENTIAL[-1][1])


def test_to_input_size_places_layer_units_over_the_pixels_they_see():
    conv2 = np.zeros((24, 24), np.float32)
    conv2[0, 0] = 1
    placed = to_input_size(conv2)
    assert placed.shape == (28, 28) and placed[2, 2] == 1 and placed.sum() == 1
    pool = np.zeros((12, 12), np.float32)
    pool[1, 1] = 1
    assert np.argwhere(to_input_size(pool)).tolist() == [[4, 4], [4, 5], [5, 4], [5, 5]]


def test_the_shipped_statistics_rank_every_method_by_deletion_area(client):
    answer = client.get("/v1/statistics/attribution").json()
    assert answer["images"] == 1000 and {m["method"] for m in answer["methods"]} == set(METHODS)
    areas = [m["deletion_auc"] for m in answer["methods"]]
    assert areas == sorted(areas)


def test_the_statistics_endpoint_answers_503_naming_the_command_then_serves_the_section(tmp_path):
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.api.settings import Settings

    folder = tmp_path / "models"
    folder.mkdir()
    for path in served_models().iterdir():
        if path.name != "statistics.json":
            (folder / path.name).symlink_to(path.resolve())
    statistics = json.loads((MODELS / "statistics.json").read_text())
    statistics.pop("attribution", None)
    (folder / "statistics.json").write_text(json.dumps(statistics))
    with TestClient(create_app(Settings(model_dir=folder))) as without:
        response = without.get("/v1/statistics/attribution")
    assert response.status_code == 503 and "--only attribution" in response.json()["error"]
    statistics["attribution"] = {
        "images": 2,
        "target": "predicted",
        "fractions": [0.0, 1.0],
        "random_deletion_auc": 0.5,
        "random_insertion_auc": 0.5,
        "random_deletion": [1.0, 0.0],
        "random_insertion": [0.0, 1.0],
        "methods": {
            name: {
                "deletion_auc": 0.1 * k,
                "insertion_auc": 0.9,
                "deletion": [1.0, 0.0],
                "insertion": [0.0, 1.0],
                "parameters": {},
                "seconds": 1.0,
            }
            for k, name in enumerate(reversed(list(METHODS)))
        },
    }
    (folder / "statistics.json").write_text(json.dumps(statistics))
    with TestClient(create_app(Settings(model_dir=folder))) as served:
        answer = served.get("/v1/statistics/attribution").json()
    assert [m["method"] for m in answer["methods"]] == list(reversed(list(METHODS)))
    assert [m["rank"] for m in answer["methods"]] == list(range(1, len(METHODS) + 1))
    shutil.rmtree(folder)
