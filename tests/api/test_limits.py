"""Inference slots and the request timeout: excess load gets 503 with Retry-After, never a pile-up."""

import time

from tests.api.conftest import make_client
from tests.helpers import post_image


def test_a_request_that_finds_every_inference_slot_taken_gets_503_with_retry_after(digit_png):
    with make_client(max_concurrent_inferences=1, inference_wait_seconds=0.05) as busy:
        gate = busy.app.state.registry.models["classifier"].gate
        with gate.slot("held by the test"):
            response = post_image(busy, "/v1/classify", digit_png)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "busy" in response.json()["error"]
        assert post_image(busy, "/v1/classify", digit_png).status_code == 200


def test_a_request_slower_than_the_timeout_gets_503(digit_png):
    def slow_body():
        yield digit_png[:50]
        time.sleep(0.5)  # the client's slowness is the input here: 2.5x the timeout under test
        yield digit_png[50:]

    with make_client(request_timeout_seconds=0.2) as impatient:
        response = impatient.post("/v1/classify", content=slow_body(), headers={"content-type": "image/png"})
        assert response.status_code == 503
        assert "longer than 0.2 s" in response.json()["error"]
