"""Print the app's OpenAPI document (``make openapi`` writes it to openapi/openapi.json)."""

import json

from service.api.app import create_app


def document() -> str:
    """The OpenAPI document as committed: stable key order, two-space indent, trailing newline."""
    return json.dumps(create_app().openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(document(), end="")
