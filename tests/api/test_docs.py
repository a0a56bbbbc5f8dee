"""``/docs`` works offline: Swagger UI loads its script, style and icon from this service only."""

from __future__ import annotations

import base64
import hashlib
import re

from tests.api.conftest import make_client


def referenced(html: str) -> list[str]:
    """Every URL the page loads: script sources, stylesheets, icons, and the OpenAPI document."""
    return re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


def test_the_documentation_page_loads_nothing_from_another_host(client):
    response = client.get("/docs")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    urls = referenced(response.text)
    assert sorted(url.rsplit("/", 1)[-1] for url in urls) == [
        "favicon.png",
        "openapi.json",
        "swagger-ui-bundle.js",
        "swagger-ui.css",
    ]
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls


def test_every_file_the_documentation_page_loads_is_served(client):
    for url in referenced(client.get("/docs").text):
        response = client.get(url)
        assert response.status_code == 200, url
        assert len(response.content) > 100, url


def test_there_is_no_redoc_page(client):
    assert client.get("/redoc").status_code == 404


def test_the_swagger_ui_script_is_version_5_which_reads_openapi_3_1(client):
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    script = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert re.search(r'PACKAGE_VERSION:"5\.\d+\.\d+"', script)


def test_the_documentation_stays_open_when_api_keys_are_on():
    with make_client(api_keys=["s3cret"]) as keyed:
        assert keyed.get("/docs").status_code == 200
        assert keyed.get("/docs/assets/swagger-ui.css").status_code == 200


def test_the_documentation_page_may_run_only_its_own_scripts(client):
    response = client.get("/docs")
    policy = dict(part.strip().split(" ", 1) for part in response.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    inline = re.findall(r"<script>(.*?)</script>", response.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"


def test_the_documentation_is_gone_when_turned_off():
    with make_client(docs=False) as closed:
        assert closed.get("/docs").status_code == 404
        assert closed.get("/docs/assets/swagger-ui.css").status_code == 404
        assert closed.get("/openapi.json").status_code == 404
