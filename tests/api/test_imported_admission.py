"""Admission control weighs a request on an imported model by the model's measured cost: a ResNet-18 forward pass
at 224 x 224 counts as the hundreds of MNIST ones it takes as long as, so that requests on it are heavy and leave
the last work slot to the shipped classifier's."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from service.api.middleware.work_cost import request_cost
from service.importer import ImportOptions, import_model
from service.runtime.imported import cost_of
from tests.helpers import encode, link_shipped_models
from tests.importer.frameworks import export_torch
from tests.importer.over_http import npy_body, serving

NAME = "resnet18"
SIDE = 224


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("admission")
    torch.manual_seed(0)
    onnx_file = export_torch(torchvision.models.resnet18(weights=None), folder / "resnet18.onnx", SIDE)
    models = link_shipped_models(folder / "models")
    manifest = import_model(onnx_file, ImportOptions(name=NAME, models_dir=models))
    assert cost_of(manifest) > 1  # what every test here relies on
    return models


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(np.random.default_rng(0).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8))


def scope_of(app, path: str, query: bytes = b"", content_type: bytes = b"image/png") -> dict:
    return {"app": app, "path": path, "query_string": query, "headers": [(b"content-type", content_type)]}


def test_a_request_on_an_imported_model_costs_its_forward_pass_in_classifier_units(models):
    with serving(models) as client:
        cost = client.get(f"/v1/models/{NAME}").json()["cost"]
        classify = scope_of(client.app, "/v1/classify", b"model=" + NAME.encode())
        shipped = scope_of(client.app, "/v1/classify", b"model=classifier")
        assert request_cost(classify, b"", 64, 100, 100) == cost
        assert request_cost(shipped, b"", 64, 100, 100) == 1


def test_a_v2_inference_counts_the_images_of_the_models_own_input_size(models):
    with serving(models) as client:
        cost = client.get(f"/v1/models/{NAME}").json()["cost"]
        body = npy_body(np.zeros((3, 3, SIDE, SIDE), np.float32))
        infer = scope_of(client.app, f"/v2/models/{NAME}/infer", content_type=b"application/octet-stream")
        assert request_cost(infer, body, 64, 100, 100) == 3 * cost


def test_looping_an_expensive_imported_model_leaves_a_work_slot_for_the_shipped_classifier(models, photo, digit_png):
    # every request on the ResNet is heavy (its cost is above 1), none waits for a slot: without its model's cost
    # counted, two clients looping it hold both slots and the classifications find none
    with serving(models, max_concurrent_work=2, work_wait_seconds=0, heavy_request_cost=1) as client:
        stop = threading.Event()
        heavy: list[int] = []

        def loop_resnet() -> None:
            while not stop.is_set():
                answer = client.post(
                    "/v1/classify", params={"model": NAME}, content=photo, headers={"content-type": "image/png"}
                )
                heavy.append(answer.status_code)

        loops = [threading.Thread(target=loop_resnet) for _ in range(2)]
        for thread in loops:
            thread.start()
        time.sleep(0.3)
        ordinary = []
        for _ in range(20):
            ordinary.append(
                client.post("/v1/classify", content=digit_png, headers={"content-type": "image/png"}).status_code
            )
            time.sleep(0.05)
        stop.set()
        for thread in loops:
            thread.join()
    assert ordinary == [200] * 20
    assert set(heavy) <= {200, 503} and 200 in heavy and 503 in heavy
