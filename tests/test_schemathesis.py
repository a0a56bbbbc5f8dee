"""Property-based checks of the running service against the committed OpenAPI document: no 5xx, every
response (status, content type, body, headers) as documented."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server import ROOT, running_service

schema = schemathesis.openapi.from_path(ROOT / "openapi" / "openapi.json")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def base_url():
    with running_service() as (base, _):
        yield base


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case, base_url):
    case.call_and_validate(base_url=base_url, checks=CHECKS)
