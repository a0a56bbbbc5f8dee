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
        if "post" in operations and not path.startswith("/v2/"):
            operation = operations["post"]
            bodies = (
                {"multipart/form-data", "application/x-npy"}
                if path.endswith("/batch")
                else {"multipart/form-data", "image/png", "image/jpeg"}
            )
            assert set(operation["requestBody"]["content"]) >= bodies, f"POST {path}"
            assert {"400", "413", "415", "422"} <= set(operation["responses"]), f"POST {path}"


def test_every_v2_inference_documents_json_and_binary_bodies_and_its_error_statuses():
    paths = json.loads(document())["paths"]
    inferences = [path for path in paths if path.startswith("/v2/models/") and "post" in paths[path]]
    assert inferences == ["/v2/models/{model_name}/infer", "/v2/models/{model_name}/versions/{model_version}/infer"]
    for path in inferences:
        operation = paths[path]["post"]
        assert set(operation["requestBody"]["content"]) == {"application/json", "application/octet-stream"}, path
        assert set(operation["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}, path
        assert {"400", "401", "404", "413", "503"} <= set(operation["responses"]), path


def test_the_limits_are_documented_in_the_openapi_description():
    description = json.loads(document())["info"]["description"]
    for fragment in (
        "10,485,760 bytes (413)",
        "16,000,000 pixels (413)",
        "1,000 images (413)",
        "67,108,864 bytes of tensors (413)",
        "gets 503",
    ):
        assert fragment in description
