"""The committed OpenAPI document is the app's own."""

import json
from pathlib import Path

from service.api.openapi import document

COMMITTED = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_openapi_document_matches_the_app():
    assert COMMITTED.read_text() == document(), "openapi/openapi.json is stale: run `make openapi`"


def test_every_operation_has_a_summary():
    for path, operations in json.loads(document())["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method.upper()} {path} has no summary"


def test_every_upload_documents_its_body_and_error_statuses():
    for path, operations in json.loads(document())["paths"].items():
        if "post" in operations:
            operation = operations["post"]
            bodies = (
                {"multipart/form-data", "application/x-npy"}
                if path.endswith("/batch")
                else {"multipart/form-data", "image/png", "image/jpeg"}
            )
            assert set(operation["requestBody"]["content"]) >= bodies, f"POST {path}"
            assert {"400", "413", "415", "422"} <= set(operation["responses"]), f"POST {path}"


def test_the_limits_are_documented_in_the_openapi_description():
    description = json.loads(document())["info"]["description"]
    for fragment in ("10,485,760 bytes (413)", "16,000,000 pixels (413)", "1,000 images (413)", "gets 503"):
        assert fragment in description
