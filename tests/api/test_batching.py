"""Dynamic micro-batching: concurrent classifications share onnxruntime runs and get their own answers."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tests.api.conftest import make_client
from tests.helpers import encode, post_image


def metric(client, name: str) -> float:
    line = next(line for line in client.get("/metrics").text.splitlines() if line.startswith(name + " "))
    return float(line.split()[-1])


def test_concurrent_classifications_share_runs_and_each_gets_its_own_answer(client, mnist_test):
    images, labels = mnist_test[0][:48], mnist_test[1][:48]
    expected = [post_image(client, "/v1/classify", encode(image)).json() for image in images]
    with make_client(micro_batching=True, micro_batch_window_ms=20, micro_batch_max=16) as batching:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda image: post_image(batching, "/v1/classify", encode(image)).json(), images))
        assert [a["digit"] for a in answers] == [e["digit"] for e in expected]
        assert np.allclose([a["probabilities"] for a in answers], [e["probabilities"] for e in expected], atol=1e-6)
        assert metric(batching, "convlens_microbatch_size_sum") == len(images)
        assert metric(batching, "convlens_microbatch_size_count") < len(images)
    assert np.mean([a["digit"] for a in answers] == labels) > 0.9


def test_micro_batching_is_off_by_default(client, digit_png):
    post_image(client, "/v1/classify", digit_png)
    assert client.app.state.batcher is None
