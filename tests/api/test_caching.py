"""Answers of fixed content carry an ETag and Cache-Control; a client that has the answer gets a bodiless 304."""

import pytest

from tests.helpers import post_image


@pytest.mark.parametrize(
    "path", ["/v1/statistics", "/v1/statistics/norms/conv2?format=png", "/v1/models", "/v1/filters/conv1/weights"]
)
def test_fixed_answers_carry_an_etag_and_cache_control(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["etag"].startswith('"') and response.headers["cache-control"] == "public, max-age=300"


def test_the_same_answer_has_the_same_etag_and_revalidates_to_304(client):
    first = client.get("/v1/statistics/norms/conv1")
    again = client.get("/v1/statistics/norms/conv1", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


def test_different_answers_have_different_etags(client):
    assert (
        client.get("/v1/statistics/norms/conv1").headers["etag"]
        != client.get("/v1/statistics/norms/conv2").headers["etag"]
    )


def test_errors_and_uploads_are_not_cached(client, digit_png):
    assert "etag" not in client.get("/v1/statistics/norms/nowhere").headers
    assert "etag" not in post_image(client, "/v1/classify", digit_png).headers
