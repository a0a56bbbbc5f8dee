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
