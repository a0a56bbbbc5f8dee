"""Prometheus metrics and the structured access log."""

import json
import logging
import multiprocessing
import re

from service.api.middleware.monitoring import new_request_id
from tests.helpers import post_image


def metric_lines(client) -> list[str]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return response.text.splitlines()


def test_metrics_count_requests_by_route_template_and_status(client, digit_png):
    post_image(client, "/v1/activations/conv1", digit_png)
    post_image(client, "/v1/activations/nope", digit_png)
    lines = metric_lines(client)
    assert any(
        line.startswith('convlens_requests_total{method="POST",route="/v1/activations/{layer}",status="200"}')
        for line in lines
    )
    assert any('route="/v1/activations/{layer}",status="404"' in line for line in lines)


def test_metrics_have_latency_inference_and_in_flight_series(client, digit_png):
    post_image(client, "/v1/classify", digit_png)
    text = "\n".join(metric_lines(client))
    assert 'convlens_request_duration_seconds_bucket{le="0.01",route="/v1/classify"}' in text
    assert 'convlens_inference_duration_seconds_count{model="classifier"}' in text
    assert "convlens_requests_in_flight" in text


def test_rejected_uploads_are_counted_by_reason(client):
    post_image(client, "/v1/classify", b"not an image at all")
    assert any(
        line.startswith('convlens_rejected_uploads_total{reason="unsupported_format"}') for line in metric_lines(client)
    )


def test_each_request_is_one_json_access_log_line_without_the_image(client, digit_png, caplog):
    with caplog.at_level(logging.INFO, logger="convlens.access"):
        post_image(client, "/v1/classify", digit_png)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "convlens.access"]
    assert len(records) == 1
    line = records[0]
    assert line["route"] == "/v1/classify" and line["status"] == 200 and line["method"] == "POST"
    assert line["bytes_in"] == len(digit_png) and line["bytes_out"] > 0 and line["duration_ms"] > 0
    assert set(line) == {"method", "route", "path", "status", "duration_ms", "bytes_in", "bytes_out", "request_id"}


def test_the_request_id_is_echoed_in_the_answer_and_the_access_log(client, digit_png, caplog):
    with caplog.at_level(logging.INFO, logger="convlens.access"):
        response = client.post(
            "/v1/classify", content=digit_png, headers={"content-type": "image/png", "x-request-id": "trace-42.a"}
        )
    assert response.headers["x-request-id"] == "trace-42.a"
    assert json.loads(caplog.records[-1].getMessage())["request_id"] == "trace-42.a"


def test_a_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(client):
    first = client.get("/healthz").headers["x-request-id"]
    unsafe = client.get("/healthz", headers={"x-request-id": "a b\tc" * 40}).headers["x-request-id"]
    assert len(first) == 32 and unsafe != first and " " not in unsafe and len(unsafe) == 32


def test_every_answer_carries_nosniff_and_a_referrer_policy(client, digit_png):
    for response in (client.get("/healthz"), post_image(client, "/v1/classify", digit_png), client.get("/nowhere")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_answers_that_used_a_model_carry_its_sha256_prefix(client, digit_png, manifest):
    classifier = manifest["models"]["classifier"]["sha256"][:12]
    autoencoder = manifest["models"]["autoencoder"]["sha256"][:12]
    assert post_image(client, "/v1/classify", digit_png).headers["x-model-version"] == classifier
    inspected = post_image(client, "/v1/inspect", digit_png).headers["x-model-version"]
    assert inspected == f"{classifier},{autoencoder}"
    assert "x-model-version" not in client.get("/healthz").headers


def test_fresh_request_ids_are_distinct_32_hex_digits():
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", request_id) for request_id in ids)


def test_a_forked_worker_makes_request_ids_of_its_own():
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(new_request_id)
    assert child[:16] != new_request_id()[:16]
