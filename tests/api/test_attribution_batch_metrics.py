"""Quality metrics on /v1/attribution/{method}/batch?metrics: through the real app and the shipped classifier, each
item's metrics are its single answer's, the cost is refused before any run, and a .npy answer carries their means."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests.api.conftest import make_client
from tests.helpers import encode

NPY = {"content-type": "application/x-npy"}


def _npy(images: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, images)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def three(mnist_test) -> np.ndarray:
    return mnist_test[0][:3]


def _batch(client, method: str, images: np.ndarray, metrics: str, **headers):
    return client.post(
        f"/v1/attribution/{method}/batch", params={"metrics": metrics}, content=_npy(images), headers={**NPY, **headers}
    )


def _leaves(value, path: str = "") -> dict[str, object]:
    """Every number, flag and name of a nested JSON answer by its path."""
    if isinstance(value, dict):
        return {key: leaf for name, item in value.items() for key, leaf in _leaves(item, f"{path}/{name}").items()}
    if isinstance(value, list):
        return {key: leaf for i, item in enumerate(value) for key, leaf in _leaves(item, f"{path}/{i}").items()}
    return {path: value}


@pytest.mark.parametrize("method", ["saliency", "integrated-gradients"])
def test_each_batch_item_carries_the_metrics_of_its_single_answer(client, three, method):
    answer = _batch(client, method, three, "all")
    assert answer.status_code == 200, answer.text
    for image, item in zip(three, answer.json()["results"]):
        single = client.post(
            f"/v1/attribution/{method}", params={"format": "json", "metrics": "all"}, files={"image": encode(image)}
        ).json()["metrics"]
        batched, alone = _leaves(item["metrics"]), _leaves(single)
        assert batched.keys() == alone.keys()
        for path, value in alone.items():
            assert batched[path] == (pytest.approx(value, rel=1e-5, abs=1e-7) if isinstance(value, float) else value)


def test_a_npy_batch_answer_carries_the_means_of_its_metrics(client, three):
    metrics = "sparseness,effective_complexity,deletion"
    items = _batch(client, "saliency", three, metrics).json()["results"]
    raw = _batch(client, "saliency", three, metrics, accept="application/x-npy")
    assert raw.headers["content-type"] == "application/x-npy"
    header = dict(part.split("=") for part in raw.headers["x-attribution-metrics-summary"].split(";"))
    assert set(header) == {"sparseness", "effective_complexity", "deletion"}
    assert float(header["sparseness"]) == pytest.approx(np.mean([i["metrics"]["sparseness"] for i in items]), rel=1e-5)
    complexity = np.mean([i["metrics"]["effective_complexity"] for i in items])
    assert float(header["effective_complexity"]) == pytest.approx(complexity, rel=1e-5)
    deletion = np.mean([i["metrics"]["deletion"]["area"] for i in items])
    assert float(header["deletion"]) == pytest.approx(deletion, rel=1e-5)


def test_batch_metrics_over_the_work_limit_are_a_413_before_any_map(three):
    # saliency: one pass per map; max-sensitivity's 10 noisy copies x 3 images = 30 passes > 29
    with make_client(max_metric_work=29) as small:
        over = _batch(small, "saliency", three, "max_sensitivity")
        within = _batch(small, "saliency", three[:2], "max_sensitivity")
    assert over.status_code == 413
    assert "max_metric_work" in over.json()["error"] and "3 image(s)" in over.json()["error"]
    assert within.status_code == 200, within.text


def test_batch_metrics_of_an_unknown_metric_are_a_422_naming_it(client, three):
    answer = _batch(client, "saliency", three, "bogus")
    assert answer.status_code == 422 and "bogus" in answer.json()["error"]
