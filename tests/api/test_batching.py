"""Dynamic micro-batching: concurrent /v1/classify and /v2 inference requests share onnxruntime runs (a request
alone in flight runs at once), and each gets exactly the answer it gets alone."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tests.api.conftest import make_client
from tests.api.test_inference_protocol import binary_request, json_request
from tests.helpers import encode, post_image

HEADER_LENGTH = "Inference-Header-Content-Length"


def metric(client, name: str) -> float:
    line = next(line for line in client.get("/metrics").text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])


def output_arrays(response) -> dict[str, np.ndarray]:
    """Every output of a /v2 answer (JSON, or JSON then binary tensors) as float32 arrays of its shape."""
    assert response.status_code == 200, response.text
    header = response.headers.get(HEADER_LENGTH)
    text = response.content if header is None else response.content[: int(header)]
    offset, arrays = len(text), {}
    for output in json.loads(text)["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is None:
            arrays[output["name"]] = np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
        else:
            arrays[output["name"]] = np.frombuffer(response.content[offset : offset + size], "<f4").reshape(
                output["shape"]
            )
            offset += size
    return arrays


def v2_requests(images: np.ndarray) -> list[dict]:
    """Single images and small batches, JSON and binary, asking for different outputs."""
    outputs = (["output"], ["dense1", "output"], ["pool"], ["output", "conv2"])
    requests, start, position = [], 0, 0
    while start < len(images):
        count = 1 + position % 3
        chunk, wanted = images[start : start + count], outputs[position % len(outputs)]
        if position % 2:
            body, headers = binary_request(chunk, wanted)
            requests.append({"content": body, "headers": headers})
        else:
            requests.append({"json": json_request(chunk, wanted)})
        start, position = start + count, position + 1
    return requests


def test_concurrent_classifications_share_runs_and_each_gets_its_own_answer(mnist_test):
    images, labels = mnist_test[0][:48], mnist_test[1][:48]
    with make_client(micro_batching=False) as alone:
        expected = [post_image(alone, "/v1/classify", encode(image)).json() for image in images]
    with make_client(micro_batching=True, micro_batch_window_ms=20, micro_batch_max=16) as batching:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda image: post_image(batching, "/v1/classify", encode(image)).json(), images))
        assert answers == expected
        shared_images = metric(batching, "convlens_microbatch_size_sum")
        assert metric(batching, "convlens_microbatch_size_count") < shared_images <= len(images)
    assert np.mean([a["digit"] for a in answers] == labels) > 0.9


def test_concurrent_v2_requests_share_runs_and_each_equals_its_answer_alone(mnist_test):
    images = (mnist_test[0][:60].astype(np.float32) / 255.0)[..., None]
    requests = v2_requests(images)
    path = "/v2/models/classifier/infer"
    with make_client(micro_batching=False) as alone:
        expected = [output_arrays(alone.post(path, **request)) for request in requests]
    with make_client(micro_batching=True, micro_batch_window_ms=20, micro_batch_max=16) as batching:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda request: output_arrays(batching.post(path, **request)), requests))
        shared_runs = metric(batching, "convlens_microbatch_size_count")
        shared_images = metric(batching, "convlens_microbatch_size_sum")
    assert shared_runs < len(requests) and shared_runs < shared_images <= len(images)
    for got, wanted in zip(answers, expected):
        assert list(got) == list(wanted)
        assert all(np.array_equal(got[name], wanted[name]) for name in wanted)


def test_a_v2_request_larger_than_a_shared_run_runs_alone_with_the_same_answer(mnist_test):
    images = (mnist_test[0][:24].astype(np.float32) / 255.0)[..., None]
    body, headers = binary_request(images, ["output"])
    with make_client(micro_batching=False) as alone:
        expected = output_arrays(alone.post("/v2/models/classifier/infer", content=body, headers=headers))
    with make_client(micro_batching=True, micro_batch_max=16) as batching:
        got = output_arrays(batching.post("/v2/models/classifier/infer", content=body, headers=headers))
        assert metric(batching, "convlens_microbatch_size_count") == 0
    assert np.array_equal(got["output"], expected["output"])


def test_a_request_alone_in_flight_runs_at_once_without_the_batcher(client, digit_png):
    with make_client(micro_batching=True) as batching:
        assert (
            post_image(batching, "/v1/classify", digit_png).json()
            == post_image(client, "/v1/classify", digit_png).json()
        )
        assert metric(batching, "convlens_microbatch_size_count") == 0


def test_a_shared_run_that_finds_every_inference_slot_busy_is_503_with_retry_after(mnist_test):
    body, headers = binary_request((mnist_test[0][:1].astype(np.float32) / 255.0)[..., None], ["output"])
    with make_client(micro_batching=True, max_concurrent_inferences=1, inference_wait_seconds=0.05) as busy:
        with busy.app.state.registry.models["classifier"].gate.slot("held by the test"):
            response = busy.post("/v2/models/classifier/infer", content=body, headers=headers)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
