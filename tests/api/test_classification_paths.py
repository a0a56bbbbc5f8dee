"""Every path that classifies a digit goes through the one core function, ``service.studies.classification.classify``:
the shortcut middleware, FastAPI's routing, the event loop and the thread, the micro-batcher, the batch route,
/v1/inspect and /v2 inference. A counting wrapper around it records each call of a real request on the real app."""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from service.api.middleware import classify_shortcut
from service.studies import classification
from tests.api.conftest import make_client
from tests.helpers import post_image


@pytest.fixture
def calls(monkeypatch) -> list[dict]:
    """Each call of ``classify``: the model, how many images, the layers asked for, ``now``, and whether it ran."""
    recorded: list[dict] = []
    original = classification.classify

    def counting(model, images, judge, layers=(), *, now=False, top=None):
        result = original(model, images, judge, layers, now=now, top=top)
        count = len(images.reshape(-1, 28, 28))
        recorded.append(
            {"model": model.name, "images": count, "layers": tuple(layers), "now": now, "ran": result is not None}
        )
        return result

    monkeypatch.setattr(classification, "classify", counting)
    return recorded


@pytest.fixture
def shortcut_taken(monkeypatch) -> list[bool]:
    """Whether the shortcut middleware took each POST /v1/classify it saw."""
    taken: list[bool] = []
    applies = classify_shortcut.ClassifyShortcut._applies

    def recording(self, scope):
        answer = applies(self, scope)
        if scope["type"] == "http" and scope["path"] == classify_shortcut.PATH:
            taken.append(answer)
        return answer

    monkeypatch.setattr(classify_shortcut.ClassifyShortcut, "_applies", recording)
    return taken


def npy(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, images)
    return buffer.getvalue()


def test_the_shortcut_classifies_through_classify(client, digit_png, calls, shortcut_taken):
    assert post_image(client, "/v1/classify", digit_png).status_code == 200
    assert shortcut_taken == [True]
    assert calls == [{"model": "classifier", "images": 1, "layers": (), "now": True, "ran": True}]


def test_fastapis_routing_classifies_through_classify(client, digit_png, calls, shortcut_taken):
    assert post_image(client, "/v1/classify", digit_png, model="classifier").status_code == 200
    assert shortcut_taken == [False]
    assert calls == [{"model": "classifier", "images": 1, "layers": (), "now": True, "ran": True}]


def test_with_no_inference_slot_free_the_thread_classifies_through_classify(digit_png, calls):
    with make_client(max_concurrent_inferences=1, inference_wait_seconds=30) as single, ThreadPoolExecutor(1) as pool:
        gate = single.app.state.registry.models["classifier"].gate
        with gate.slot("the test"):  # the only slot: the event loop cannot run it at once
            answer = pool.submit(post_image, single, "/v1/classify", digit_png)
            deadline = time.monotonic() + 30
            while not calls and time.monotonic() < deadline:
                time.sleep(0.01)
        assert answer.result(timeout=30).status_code == 200
    assert [(call["now"], call["ran"]) for call in calls] == [(True, False), (False, True)]


def test_the_micro_batcher_classifies_through_classify(digit_png, calls):
    with make_client(micro_batching=True, micro_batch_window_ms=20) as batching, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post_image(batching, "/v1/classify", digit_png), range(16)))
        state = batching.app.state
        judged = tuple(
            classification.outputs_for(state.registry.models["classifier"], state.statistics.judge("classifier"))
        )
    assert [answer.status_code for answer in answers] == [200] * 16
    shared = [call for call in calls if not call["now"]]
    assert shared and all(call["layers"] == judged for call in shared)
    assert sum(call["images"] for call in calls if call["ran"]) == 16


def test_micro_batched_v2_inference_classifies_through_classify(mnist_test, calls):
    images = (mnist_test[0][:3].astype(np.float32) / 255).reshape(3, 28, 28, 1)
    document = {
        "inputs": [{"name": "input", "shape": [3, 28, 28, 1], "datatype": "FP32", "data": images.ravel().tolist()}],
        "outputs": [{"name": "pool"}],
    }
    with make_client(micro_batching=True, micro_batch_window_ms=20) as batching, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: batching.post("/v2/models/classifier/infer", json=document), range(8)))
    assert [answer.status_code for answer in answers] == [200] * 8
    ran = [call for call in calls if call["ran"]]
    assert all(call["layers"] == ("pool",) for call in calls)
    assert sum(call["images"] for call in ran) == 24
    assert any(call["images"] > 3 for call in ran)


def test_the_batch_route_classifies_through_classify(client, mnist_test, calls):
    response = client.post(
        "/v1/classify/batch", content=npy(mnist_test[0][:5]), headers={"content-type": "application/x-npy"}
    )
    assert response.status_code == 200
    assert calls == [{"model": "classifier", "images": 5, "layers": (), "now": False, "ran": True}]


def test_inspect_classifies_through_classify_with_its_layers(client, digit_png, calls):
    assert post_image(client, "/v1/inspect", digit_png).status_code == 200
    assert calls == [
        {"model": "classifier", "images": 1, "layers": ("conv1", "conv2", "pool"), "now": False, "ran": True}
    ]


def test_v2_inference_on_the_classifier_classifies_through_classify(client, mnist_test, calls):
    images = (mnist_test[0][:3].astype(np.float32) / 255).reshape(3, 28, 28, 1)
    document = {
        "inputs": [{"name": "input", "shape": [3, 28, 28, 1], "datatype": "FP32", "data": images.ravel().tolist()}],
        "outputs": [{"name": "output"}],
    }
    assert client.post("/v2/models/classifier/infer", json=document).status_code == 200
    assert calls == [{"model": "classifier", "images": 3, "layers": ("output",), "now": False, "ran": True}]


def test_a_v2_inference_of_one_image_alone_in_flight_classifies_on_the_event_loop(client, mnist_test, calls):
    image = (mnist_test[0][:1].astype(np.float32) / 255).reshape(1, 28, 28, 1)
    document = {
        "inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP32", "data": image.ravel().tolist()}],
        "outputs": [{"name": "output"}],
    }
    assert client.post("/v2/models/classifier/infer", json=document).status_code == 200
    assert calls == [{"model": "classifier", "images": 1, "layers": ("output",), "now": True, "ran": True}]


def test_v2_inference_on_the_autoencoder_is_no_classification(client, mnist_test, calls):
    images = (mnist_test[0][:1].astype(np.float32) / 255).reshape(1, 28, 28, 1)
    document = {
        "inputs": [{"name": "input", "shape": [1, 28, 28, 1], "datatype": "FP32", "data": images.ravel().tolist()}],
        "outputs": [{"name": "decoded"}],
    }
    assert client.post("/v2/models/autoencoder/infer", json=document).status_code == 200
    assert calls == []
