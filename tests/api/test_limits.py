"""Inference slots and the request timeout: excess load gets 503 with Retry-After, never a pile-up."""

import http.client
import json
import socket
import time

from tests.api.conftest import make_client
from tests.helpers import post_image
from tests.server import running_service


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
    # over TCP, as a slow client sends: in the test client the body's pauses would block the event loop itself
    with running_service(CONVLENS_REQUEST_TIMEOUT_SECONDS="0.2") as (base, _):
        host, port = base.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            head = (
                f"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {len(digit_png)}"
            )
            sock.sendall(head.encode() + b"\r\n\r\n" + digit_png[:50])
            time.sleep(0.5)  # the client's slowness is the input here: 2.5x the timeout under test
            sock.sendall(digit_png[50:])
            answer = http.client.HTTPResponse(sock)
            answer.begin()
            assert answer.status == 503
            assert "longer than 0.2 s" in json.loads(answer.read())["error"]
