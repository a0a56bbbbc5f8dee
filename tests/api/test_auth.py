"""Optional API keys: off by default; when set, /v1 needs one, health and metrics stay open."""

import pytest

from tests.api.conftest import make_client


@pytest.fixture(scope="module")
def keyed():
    with make_client(api_keys=["s3cret", "other"]) as test_client:
        yield test_client


def test_without_keys_configured_v1_is_open(client):
    assert client.get("/v1/models").status_code == 200


def test_with_keys_a_v1_request_without_a_key_is_401_saying_how_to_send_one(keyed):
    response = keyed.get("/v1/models")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer <key>" in response.json()["error"]


def test_a_wrong_key_is_401(keyed, digit_png):
    response = keyed.post(
        "/v1/classify", content=digit_png, headers={"content-type": "image/png", "x-api-key": "guess"}
    )
    assert response.status_code == 401


@pytest.mark.parametrize("header", [{"authorization": "Bearer s3cret"}, {"x-api-key": "other"}])
def test_a_configured_key_in_either_header_is_accepted(keyed, digit_png, header):
    response = keyed.post("/v1/classify", content=digit_png, headers={"content-type": "image/png", **header})
    assert response.status_code == 200 and response.json()["digit"] == 7


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_health_and_metrics_stay_open(keyed, path):
    assert keyed.get(path).status_code == 200


def test_when_both_key_headers_are_sent_x_api_key_decides_even_if_the_bearer_key_is_valid(keyed):
    headers = {"x-api-key": "guess", "authorization": "Bearer s3cret"}
    assert keyed.get("/v1/models", headers=headers).status_code == 401
    headers = {"x-api-key": "s3cret", "authorization": "Bearer guess"}
    assert keyed.get("/v1/models", headers=headers).status_code == 200


def test_with_keys_answers_of_fixed_content_are_cached_privately(keyed):
    response = keyed.get("/v1/models", headers={"x-api-key": "s3cret"})
    assert response.headers["cache-control"].startswith("private")


def test_docs_and_the_openapi_document_can_be_turned_off():
    with make_client(docs=False) as closed:
        assert closed.get("/docs").status_code == 404
        assert closed.get("/openapi.json").status_code == 404
        assert closed.get("/healthz").status_code == 200
