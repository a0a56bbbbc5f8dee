"""The Open Inference Protocol (KServe v2) beside /v1, spoken with real clients (tritonclient, httpx) to the service
started as users start it: health, metadata, inference with binary and JSON tensors equal to /v1's answers, and every
error in the protocol's own shape."""

from __future__ import annotations

import io
import json

import httpx
import jsonschema
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from service.contract import VARIANTS_DIR
from tests.api.conftest import make_client
from tests.helpers import MODELS, encode, link_shipped_models
from tests.server import running_service

VARIANT = "relu-copy"
LAYERS = {"conv1": [26, 26, 32], "conv2": [24, 24, 64], "pool": [12, 12, 64], "dense1": [128], "output": [10]}
KEY = "s3cret"
HEADER_LENGTH = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The shipped models plus one variant (the shipped classifier under another name), as the sweep lays them out."""
    target = link_shipped_models(tmp_path_factory.mktemp("v2") / "models")
    manifest = json.loads((MODELS / "manifest.json").read_text())
    variant = target / VARIANTS_DIR / VARIANT
    variant.mkdir(parents=True)
    (variant / "classifier.onnx").symlink_to(MODELS / "classifier.onnx")
    classifier = manifest["models"]["classifier"]
    document = {"format": 1, "models": {"classifier": classifier}, "versions": manifest["versions"]}
    (variant / "manifest.json").write_text(json.dumps(document))
    return target


@pytest.fixture(scope="module")
def base_url(model_dir):
    with running_service(CONVLENS_MODEL_DIR=str(model_dir)) as (base, _):
        yield base


@pytest.fixture(scope="module")
def keyed_url(model_dir):
    """A service with API keys on and a small body limit."""
    env = {"CONVLENS_MODEL_DIR": str(model_dir), "CONVLENS_API_KEYS": KEY, "CONVLENS_MAX_UPLOAD_BYTES": "20000"}
    with running_service(**env) as (base, _):
        yield base


@pytest.fixture(scope="module")
def triton_client(base_url):
    connection = triton.InferenceServerClient(
        base_url.removeprefix("http://"), connection_timeout=30, network_timeout=30
    )
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def http(base_url):
    with httpx.Client(base_url=base_url, timeout=30) as connection:
        yield connection


@pytest.fixture(scope="module")
def digits(mnist_test) -> np.ndarray:
    """The first 64 real test digits as the network takes them: float32 (N, 28, 28, 1) in [0, 1]."""
    return (mnist_test[0][:64].astype(np.float32) / 255.0)[..., None]


def tensor(images: np.ndarray, binary: bool = True, datatype: str = "FP32") -> triton.InferInput:
    tensor = triton.InferInput("input", list(images.shape), datatype)
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tensor


def wanted(*names: str, binary: bool = True) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=binary) for name in names]


def refused(call) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as caught:
        call()
    return caught.value


def json_request(images: np.ndarray, outputs: list[str] | None = None, **fields) -> dict:
    request = {
        "inputs": [{"name": "input", "shape": list(images.shape), "datatype": "FP32", "data": images.ravel().tolist()}]
    }
    if outputs is not None:
        request["outputs"] = [{"name": name} for name in outputs]
    return {**request, **fields}


def binary_request(images: np.ndarray, outputs: list[str], binary_size: int | None = None) -> tuple[bytes, dict]:
    """A body of the binary tensor data extension and its headers (``binary_size`` overrides the declared size)."""
    size = images.nbytes if binary_size is None else binary_size
    document = {
        "inputs": [
            {"name": "input", "shape": list(images.shape), "datatype": "FP32", "parameters": {"binary_data_size": size}}
        ],
        "outputs": [{"name": name, "parameters": {"binary_data": True}} for name in outputs],
    }
    header = json.dumps(document).encode()
    return header + images.astype("<f4").tobytes(), {HEADER_LENGTH: str(len(header))}


def assert_v2_error(response: httpx.Response, status: int, fragment: str) -> None:
    """The protocol's error: the status, and a body that is exactly ``{"error": "..."}``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    assert fragment in body["error"], body["error"]


# --- health and metadata -------------------------------------------------------------------------------------------


def test_the_server_is_live(triton_client):
    assert triton_client.is_server_live()


def test_the_server_is_ready_once_the_models_are_loaded(triton_client):
    assert triton_client.is_server_ready()


def test_every_served_model_is_ready_in_version_1_and_no_other(triton_client):
    for name in ("classifier", "autoencoder", VARIANT):
        assert triton_client.is_model_ready(name) and triton_client.is_model_ready(name, "1")
    assert not triton_client.is_model_ready("classifier", "2")
    assert not triton_client.is_model_ready("vgg")


def test_server_metadata_names_convlens_and_the_binary_tensor_data_extension(triton_client):
    metadata = triton_client.get_server_metadata()
    assert metadata["name"] == "convlens" and metadata["version"] == "0.1.0"
    assert "binary_tensor_data" in metadata["extensions"]


@pytest.mark.parametrize("name", ["classifier", VARIANT])
def test_a_classifier_s_metadata_lists_its_input_and_every_named_layer(triton_client, name):
    metadata = triton_client.get_model_metadata(name)
    assert metadata["name"] == name and metadata["versions"] == ["1"] and metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 28, 28, 1]}]
    assert metadata["outputs"] == [
        {"name": layer, "datatype": "FP32", "shape": [-1, *shape]} for layer, shape in LAYERS.items()
    ]


def test_the_autoencoder_s_metadata_lists_its_own_layers(triton_client):
    manifest = json.loads((MODELS / "manifest.json").read_text())["models"]["autoencoder"]
    metadata = triton_client.get_model_metadata("autoencoder", "1")
    assert [output["name"] for output in metadata["outputs"]] == [output["name"] for output in manifest["outputs"]]
    assert metadata["outputs"][-1] == {"name": "decoded", "datatype": "FP32", "shape": [-1, 28, 28, 1]}


def test_server_ready_is_503_with_retry_after_until_the_models_are_loaded():
    not_started = make_client()  # no `with`: the lifespan that loads the models has not run
    assert_v2_error(not_started.get("/v2/health/ready"), 503, "not loaded yet")
    assert not_started.get("/v2/health/ready").headers["retry-after"] == "1"
    assert not_started.get("/v2/health/live").status_code == 200


# --- inference -----------------------------------------------------------------------------------------------------


def test_binary_infer_without_named_outputs_answers_every_layer_in_binary(triton_client, digits):
    result = triton_client.infer("classifier", [tensor(digits[:2])])
    outputs = result.get_response()["outputs"]
    assert [output["name"] for output in outputs] == list(LAYERS)
    assert all("binary_data_size" in output["parameters"] and "data" not in output for output in outputs)
    for layer, shape in LAYERS.items():
        assert result.as_numpy(layer).shape == (2, *shape) and result.as_numpy(layer).dtype == np.float32


def test_json_infer_answers_the_requested_outputs_as_json(triton_client, digits):
    result = triton_client.infer(
        "classifier", [tensor(digits[:1], binary=False)], outputs=wanted("output", binary=False)
    )
    [output] = result.get_response()["outputs"]
    assert output["name"] == "output" and output["shape"] == [1, 10] and output["datatype"] == "FP32"
    assert len(output["data"]) == 10 and "parameters" not in output
    assert abs(sum(output["data"]) - 1) < 1e-5


def test_binary_and_json_tensors_mix_in_one_request_and_agree(triton_client, digits):
    json_in = triton_client.infer(
        "classifier", [tensor(digits[:3], binary=False)], outputs=[*wanted("dense1"), *wanted("output", binary=False)]
    )
    binary_in = triton_client.infer("classifier", [tensor(digits[:3])], outputs=wanted("output", "dense1"))
    for layer in ("dense1", "output"):
        assert np.array_equal(json_in.as_numpy(layer), binary_in.as_numpy(layer))


def test_the_request_id_is_echoed(triton_client, digits):
    result = triton_client.infer("classifier", [tensor(digits[:1])], outputs=wanted("output"), request_id="digit-7")
    assert result.get_response()["id"] == "digit-7"
    assert result.get_response()["model_name"] == "classifier" and result.get_response()["model_version"] == "1"


def test_a_batch_of_64_real_digits_is_classified_as_v1_classify_batch_classifies_them(
    triton_client, http, mnist_test, digits
):
    result = triton_client.infer("classifier", [tensor(digits)], outputs=wanted("output"))
    probabilities = result.as_numpy("output")
    npy = io.BytesIO()
    np.save(npy, mnist_test[0][:64])
    batch = http.post(
        "/v1/classify/batch", content=npy.getvalue(), headers={"content-type": "application/x-npy"}
    ).json()
    assert probabilities.shape == (64, 10)
    assert probabilities.argmax(axis=1).tolist() == [item["digit"] for item in batch["results"]]
    assert np.abs(probabilities - np.array([item["probabilities"] for item in batch["results"]])).max() <= 1e-6
    assert np.mean(probabilities.argmax(axis=1) == mnist_test[1][:64]) >= 0.95


def test_a_json_answer_of_many_pieces_reads_back_to_the_binary_answer_exactly(triton_client, digits):
    # conv2 of two images is 73,728 values: streamed, written in more than one piece of JSON numbers
    as_json = triton_client.infer("classifier", [tensor(digits[:2])], outputs=wanted("conv2", binary=False))
    as_binary = triton_client.infer("classifier", [tensor(digits[:2])], outputs=wanted("conv2"))
    assert as_json.get_response()["outputs"][0].get("parameters") is None
    assert np.array_equal(as_json.as_numpy("conv2"), as_binary.as_numpy("conv2"))


def test_conv1_and_pool_equal_v1_activations_of_the_same_image(triton_client, http, mnist_test, digits):
    result = triton_client.infer("classifier", [tensor(digits[:1])], outputs=wanted("conv1", "pool"))
    for layer in ("conv1", "pool"):
        v1 = http.post(
            f"/v1/activations/{layer}",
            content=encode(mnist_test[0][0]),
            headers={"content-type": "image/png"},
            params={"preprocess": "none"},
        ).json()
        assert np.abs(result.as_numpy(layer)[0] - np.array(v1["values"], dtype=np.float32)).max() <= 1e-6


def test_a_version_1_inference_equals_the_unversioned_one(triton_client, digits):
    versioned = triton_client.infer("classifier", [tensor(digits[:2])], model_version="1", outputs=wanted("output"))
    unversioned = triton_client.infer("classifier", [tensor(digits[:2])], outputs=wanted("output"))
    assert np.array_equal(versioned.as_numpy("output"), unversioned.as_numpy("output"))


def test_the_autoencoder_reconstructs_through_v2(triton_client, digits):
    decoded = triton_client.infer("autoencoder", [tensor(digits[:4])], outputs=wanted("decoded")).as_numpy("decoded")
    assert decoded.shape == (4, 28, 28, 1)
    assert np.mean((decoded - digits[:4]) ** 2) < 0.05


def test_a_variant_is_a_v2_model_answering_like_the_classifier_it_copies(triton_client, digits):
    variant = triton_client.infer(VARIANT, [tensor(digits[:2])], outputs=wanted("output")).as_numpy("output")
    classifier = triton_client.infer("classifier", [tensor(digits[:2])], outputs=wanted("output")).as_numpy("output")
    assert np.array_equal(variant, classifier)


def test_nested_json_data_and_shape_n_28_28_answer_as_flat_data(http, digits):
    image = digits[:1]
    flat = http.post("/v2/models/classifier/infer", json=json_request(image, ["output"])).json()
    nested_request = json_request(image, ["output"])
    nested_request["inputs"][0].update(shape=[1, 28, 28], data=image[..., 0].tolist())
    nested = http.post("/v2/models/classifier/infer", json=nested_request).json()
    assert nested["outputs"] == flat["outputs"]


def test_request_parameters_are_accepted(http, digits):
    body = json_request(digits[:1], ["output"], parameters={"priority": 1, "custom": "anything"})
    assert http.post("/v2/models/classifier/infer", json=body).status_code == 200


def test_a_binary_answer_is_octet_stream_with_the_json_length_header(http, digits):
    body, headers = binary_request(digits[:2], ["output"])
    response = http.post("/v2/models/classifier/infer", content=body, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers[HEADER_LENGTH])
    document = json.loads(response.content[:length])
    assert document["outputs"][0]["parameters"] == {"binary_data_size": 80}
    assert len(response.content) == length + 80


# --- errors, in the protocol's shape ---------------------------------------------------------------------------------


def test_an_unknown_model_is_404(triton_client, http, digits):
    assert refused(lambda: triton_client.infer("vgg", [tensor(digits[:1])])).status() == "404"
    assert_v2_error(http.get("/v2/models/vgg"), 404, "unknown model 'vgg'; available: classifier, autoencoder")


def test_an_unknown_output_is_404_listing_the_outputs(triton_client, http, digits):
    error = refused(lambda: triton_client.infer("classifier", [tensor(digits[:1])], outputs=wanted("conv9")))
    assert error.status() == "404"
    response = http.post("/v2/models/classifier/infer", json=json_request(digits[:1], ["conv9"]))
    assert_v2_error(response, 404, "has no output 'conv9'; outputs: conv1, conv2, pool, dense1, output")


def test_an_unknown_v2_path_is_a_404_error_object(http):
    assert_v2_error(http.get("/v2/models/classifier/explain"), 404, "no such endpoint")


def test_a_version_other_than_1_is_404(triton_client, http, digits):
    assert refused(lambda: triton_client.infer("classifier", [tensor(digits[:1])], model_version="2")).status() == "404"
    assert_v2_error(http.get("/v2/models/classifier/versions/2"), 404, "has no version '2'; versions: 1")


@pytest.mark.parametrize(("datatype", "dtype"), [("FP64", np.float64), ("INT32", np.int32), ("UINT8", np.uint8)])
def test_a_datatype_other_than_fp32_is_400(triton_client, digits, datatype, dtype):
    images = digits[:1].astype(dtype)
    error = refused(lambda: triton_client.infer("classifier", [tensor(images, datatype=datatype)]))
    assert error.status() == "400" and f"has datatype '{datatype}'; the model takes FP32" in error.message()


@pytest.mark.parametrize("shape", [(1, 32, 32, 1), (1, 28, 28, 3), (28, 28), (1, 784)])
def test_a_wrong_shape_is_400_naming_the_shapes_taken(triton_client, shape):
    images = np.zeros(shape, np.float32)
    error = refused(lambda: triton_client.infer("classifier", [tensor(images)]))
    assert error.status() == "400" and "[N, 28, 28, 1] or [N, 28, 28]" in error.message()


def test_json_data_of_the_wrong_size_is_400(http, digits):
    body = json_request(digits[:1], ["output"])
    body["inputs"][0]["data"] = body["inputs"][0]["data"][:-1]
    assert_v2_error(http.post("/v2/models/classifier/infer", json=body), 400, "data holds 783 values")


@pytest.mark.parametrize("data", [[[0.5, 0.5], [0.5]], ["0.5"] * 784, [True] * 784, [None] * 784])
def test_json_data_that_is_not_a_rectangular_array_of_numbers_is_400(http, data):
    body = json_request(np.zeros((1, 28, 28, 1), np.float32), ["output"])
    body["inputs"][0]["data"] = data
    assert_v2_error(http.post("/v2/models/classifier/infer", json=body), 400, "input 'input'")


@pytest.mark.parametrize("declared", [3000, 6272])
def test_a_binary_data_size_disagreeing_with_the_shape_is_400(http, digits, declared):
    body, headers = binary_request(digits[:1], ["output"], binary_size=declared)
    assert_v2_error(http.post("/v2/models/classifier/infer", content=body, headers=headers), 400, "binary_data_size")


def test_a_body_shorter_than_its_binary_data_size_is_400(http, digits):
    body, headers = binary_request(digits[:1], ["output"])
    response = http.post("/v2/models/classifier/infer", content=body[:-100], headers=headers)
    assert_v2_error(
        response, 400, "the body holds 3036 bytes after the JSON document, but binary_data_size declares 3136"
    )


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_is_400(triton_client, digits, value):
    images = digits[:1].copy()
    images[0, 14, 14, 0] = value
    error = refused(lambda: triton_client.infer("classifier", [tensor(images)]))
    assert error.status() == "400" and "NaN or Inf" in error.message()


@pytest.mark.parametrize("value", [-0.01, 1.01, 255.0])
def test_values_outside_0_1_are_400(triton_client, digits, value):
    images = digits[:1].copy()
    images[0, 0, 0, 0] = value
    error = refused(lambda: triton_client.infer("classifier", [tensor(images, binary=False)]))
    assert error.status() == "400" and "outside [0, 1]" in error.message()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"inputs": [', "malformed inference request: Invalid JSON"),
        (b'{"inputs": []}', "inputs: List should have at least 1 item"),
        (
            b'{"id": 42, "inputs": [{"name": "input", "shape": [1, 28, 28], "datatype": "FP32", "data": []}]}',
            "malformed inference request: id",
        ),
        (b'{"inputs": [{"name": "pixels", "shape": [1, 28, 28], "datatype": "FP32", "data": []}]}', "one input"),
    ],
)
def test_a_malformed_document_is_400(http, body, fragment):
    assert_v2_error(http.post("/v2/models/classifier/infer", content=body), 400, fragment)


@pytest.mark.parametrize("length", ["abc", "-1", "0", "999999"])
def test_a_malformed_header_length_is_400(http, digits, length):
    body, _ = binary_request(digits[:1], ["output"])
    response = http.post("/v2/models/classifier/infer", content=body, headers={HEADER_LENGTH: length})
    assert_v2_error(response, 400, HEADER_LENGTH)


def test_a_compressed_request_body_is_400_asking_for_it_uncompressed(triton_client, digits):
    error = refused(
        lambda: triton_client.infer("classifier", [tensor(digits[:1])], request_compression_algorithm="gzip")
    )
    assert error.status() == "400" and "Content-Encoding 'gzip' is not supported" in error.message()


def test_more_images_than_the_batch_limit_is_413(triton_client):
    images = np.zeros((1001, 28, 28, 1), np.float32)
    error = refused(lambda: triton_client.infer("classifier", [tensor(images)], outputs=wanted("output")))
    assert error.status() == "413" and "1001 images in one request; the limit is 1000" in error.message()


def test_an_answer_over_max_response_bytes_is_413_naming_the_limit(triton_client):
    images = np.zeros((1000, 28, 28, 1), np.float32)
    error = refused(lambda: triton_client.infer("classifier", [tensor(images)], outputs=wanted("conv1")))
    assert error.status() == "413"
    assert "86,528,000 bytes of tensors" in error.message() and "the limit is 67,108,864 bytes" in error.message()


def test_without_a_key_v2_is_401_and_its_health_stays_open(keyed_url):
    keyed = triton.InferenceServerClient(keyed_url.removeprefix("http://"))
    try:
        assert keyed.is_server_live() and keyed.is_server_ready()
        assert refused(keyed.get_server_metadata).status() == "401"
        assert refused(lambda: keyed.get_model_metadata("classifier")).status() == "401"
        assert keyed.get_model_metadata("classifier", headers={"X-API-Key": KEY})["name"] == "classifier"
    finally:
        keyed.close()


def test_a_body_over_the_upload_limit_is_413_counted_as_it_streams(keyed_url, digits):
    body, headers = binary_request(digits[:8], ["output"])
    chunks = iter([body[:10_000], body[10_000:]])  # no Content-Length: the limit is counted as the bytes arrive
    response = httpx.post(
        f"{keyed_url}/v2/models/classifier/infer", content=chunks, headers={**headers, "X-API-Key": KEY}, timeout=30
    )
    assert_v2_error(response, 413, "over the limit of 20000 bytes")


def test_busy_is_503_with_retry_after(digits):
    body, headers = binary_request(digits[:1], ["output"])
    with make_client(max_concurrent_inferences=1, inference_wait_seconds=0.05) as busy:
        with busy.app.state.registry.models["classifier"].gate.slot("held by the test"):
            response = busy.post("/v2/models/classifier/infer", content=body, headers=headers)
        assert_v2_error(response, 503, "busy")
        assert response.headers["retry-after"] == "1"


def test_v2_requests_are_counted_by_route_template(http, digits):
    http.post("/v2/models/classifier/infer", json=json_request(digits[:1], ["output"]))
    http.get("/v2/models/vgg")
    metrics = http.get("/metrics").text
    assert 'convlens_requests_total{method="POST",route="/v2/models/{model_name}/infer",status="200"}' in metrics
    assert 'convlens_requests_total{method="GET",route="/v2/models/{model_name}",status="404"}' in metrics


# --- the specification's own examples ------------------------------------------------------------------------------
# Response schemas transcribed from the protocol's OpenAPI document: https://github.com/kserve/open-inference-protocol,
# specification/protocol/open_inference_rest.yaml, components.schemas (no PyPI package ships that document: MLServer's
# wheel holds a Seldon variant but pins fastapi<0.116 and protobuf<7, which this project cannot install).
OIP_DEFINITIONS = {
    "parameters": {"type": "object"},
    "tensor_data": {
        "type": "array",
        "items": {
            "anyOf": [{"$ref": "#/$defs/tensor_data"}, {"type": "number"}, {"type": "string"}, {"type": "boolean"}]
        },
    },
    "metadata_server_response": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "version", "extensions"],
    },
    "metadata_tensor": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["name", "datatype", "shape"],
    },
    "metadata_model_response": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": {"$ref": "#/$defs/metadata_tensor"}},
            "outputs": {"type": "array", "items": {"$ref": "#/$defs/metadata_tensor"}},
        },
        "required": ["name", "platform"],
    },
    "response_output": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"type": "string"},
            "parameters": {"$ref": "#/$defs/parameters"},
            "data": {"$ref": "#/$defs/tensor_data"},
        },
        "required": ["name", "shape", "datatype", "data"],
    },
    "inference_response": {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"$ref": "#/$defs/parameters"},
            "outputs": {"type": "array", "items": {"$ref": "#/$defs/response_output"}},
        },
        "required": ["model_name", "outputs"],
    },
    "inference_error_response": {"type": "object", "properties": {"error": {"type": "string"}}},
    # inference_rest.md, "Model Ready Response JSON Object" (the OpenAPI document gives no body for it)
    "ready_model_response": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
        "required": ["name", "ready"],
    },
}

# inference_rest.md, "Inference Request Examples": the request as the specification writes it, for its "mymodel".
SPEC_REQUEST = {
    "id": "42",
    "inputs": [
        {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
        {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]},
    ],
    "outputs": [{"name": "output0"}],
}


def conforms(document: dict, schema: str) -> None:
    jsonschema.validate(document, {"$ref": f"#/$defs/{schema}", "$defs": OIP_DEFINITIONS})


def test_the_spec_s_example_request_to_its_own_model_is_a_404_error_object(http):
    response = http.post("/v2/models/mymodel/infer", json=SPEC_REQUEST)
    assert response.status_code == 404
    conforms(response.json(), "inference_error_response")


def test_the_spec_s_example_request_to_the_classifier_is_a_400_error_object_naming_the_input(http):
    response = http.post("/v2/models/classifier/infer", json=SPEC_REQUEST)
    assert_v2_error(response, 400, "the model takes one input, 'input'; the request has ['input0', 'input1']")
    conforms(response.json(), "inference_error_response")


def test_the_spec_s_example_in_the_classifier_s_terms_answers_the_inference_response_object(http, digits):
    request = {**SPEC_REQUEST, **json_request(digits[:2], ["output"])}
    response = http.post("/v2/models/classifier/infer", json=request)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    answer = response.json()
    conforms(answer, "inference_response")
    assert answer["id"] == "42" and answer["model_name"] == "classifier"
    assert answer["outputs"][0]["name"] == "output" and answer["outputs"][0]["shape"] == [2, 10]


def test_the_metadata_and_ready_answers_conform_to_the_spec(http):
    conforms(http.get("/v2").json(), "metadata_server_response")
    for name in ("classifier", "autoencoder", VARIANT):
        conforms(http.get(f"/v2/models/{name}").json(), "metadata_model_response")
        conforms(http.get(f"/v2/models/{name}/versions/1/ready").json(), "ready_model_response")


def test_the_schema_check_itself_can_fail():
    with pytest.raises(jsonschema.ValidationError):
        conforms({"outputs": [{"name": "output", "shape": [1, 10], "datatype": "FP32"}]}, "inference_response")


def test_the_binary_extension_s_example_in_the_classifier_s_terms(http, digits):
    """Triton's docs/protocol/extension_binary_data.md, "Examples": binary input and output, octet-stream both ways."""
    body, headers = binary_request(digits[:3], ["output"])
    response = http.post(
        "/v2/models/classifier/infer", content=body, headers={**headers, "content-type": "application/octet-stream"}
    )
    length = int(response.headers[HEADER_LENGTH])
    document = json.loads(response.content[:length])
    assert document["outputs"] == [
        {"name": "output", "shape": [3, 10], "datatype": "FP32", "parameters": {"binary_data_size": 120}}
    ]
    probabilities = np.frombuffer(response.content[length:], dtype="<f4").reshape(3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
