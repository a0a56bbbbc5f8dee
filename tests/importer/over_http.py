"""An imported model asked over HTTP, on the real app with the shipped models beside it: the answers the checks
compare with the framework's own forward pass."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.settings import Settings
from tests.helpers import link_shipped_models


@contextmanager
def serving(models_dir: Path, **settings) -> Iterator[TestClient]:
    """The app on ``models_dir`` (its ``imported/``), the shipped models linked in beside them if they are not."""
    if not (models_dir / "manifest.json").exists():
        link_shipped_models(models_dir)
    with TestClient(create_app(Settings(model_dir=models_dir, **settings))) as client:
        yield client


def npy_body(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def classify_batch(client: TestClient, name: str, inputs: np.ndarray) -> np.ndarray:
    """The probabilities ``POST /v1/classify/batch?model=NAME`` answers for a .npy of the model's inputs."""
    response = client.post(
        "/v1/classify/batch",
        params={"model": name},
        content=npy_body(inputs.astype(np.float32)),
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    return np.array([result["probabilities"] for result in response.json()["results"]])


def infer_binary(client: TestClient, name: str, input_name: str, inputs: np.ndarray, outputs: list[str]) -> dict:
    """``outputs`` of ``POST /v2/models/NAME/infer`` with the inputs and the answer as binary tensors."""
    document = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(inputs.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": inputs.nbytes},
            }
        ],
        "outputs": [{"name": output, "parameters": {"binary_data": True}} for output in outputs],
    }
    header = json.dumps(document).encode()
    response = client.post(
        f"/v2/models/{name}/infer",
        content=header + inputs.astype("<f4").tobytes(),
        headers={"Inference-Header-Content-Length": str(len(header)), "content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    length = int(response.headers["Inference-Header-Content-Length"])
    answer, offset, arrays = json.loads(response.content[:length]), length, {}
    for output in answer["outputs"]:
        size = output["parameters"]["binary_data_size"]
        data = np.frombuffer(response.content[offset : offset + size], dtype="<f4")
        arrays[output["name"]], offset = data.reshape(output["shape"]), offset + size
    return arrays


def activations(client: TestClient, name: str, layer: str, image: bytes) -> np.ndarray:
    """``POST /v1/activations/LAYER?model=NAME`` of an uploaded image, as an array."""
    response = client.post(
        f"/v1/activations/{layer}", params={"model": name}, content=image, headers={"content-type": "image/png"}
    )
    assert response.status_code == 200, response.text
    return np.array(response.json()["values"])
