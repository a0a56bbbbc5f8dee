"""The core's one error hierarchy (``service.errors``): every exception of the core has a kind, and the real app
answers each kind with its status, in the /v1 and the /v2 shapes."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import service
from service.errors import (
    KINDS,
    BadInputError,
    BusyError,
    NotApplicableError,
    NotFoundError,
    ServiceError,
    TooLargeError,
    UnavailableError,
    UnsupportedError,
    kind_of,
)
from service.images.npy import BatchError, TooManyImages
from tests.api.conftest import make_client
from tests.api.test_monitoring import metric_lines

STATUS = {
    BadInputError: 400,
    NotFoundError: 404,
    TooLargeError: 413,
    UnsupportedError: 415,
    NotApplicableError: 422,
    UnavailableError: 503,
    BusyError: 503,
}


def core_exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in a module of the core (``service`` outside ``service.api``)."""
    found = []
    for module_info in pkgutil.walk_packages(service.__path__, "service."):
        name = module_info.name
        if name == "service.api" or name.startswith("service.api.") or name in ("service.__main__", "service.errors"):
            continue
        module = importlib.import_module(name)
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, BaseException) and cls.__module__ == name
        ]
    return found


def test_every_exception_of_the_core_derives_from_a_kind():
    classes = core_exception_classes()
    assert len(classes) >= 20, "the walk found too few of the core's exceptions"
    assert [cls.__qualname__ for cls in classes if kind_of(cls) is None] == []


def test_the_walk_would_report_an_exception_without_a_kind():
    assert kind_of(ValueError) is None and kind_of(type("Planted", (ServiceError,), {})) is None


def test_a_subclass_takes_the_kind_it_names_before_its_family():
    assert kind_of(BatchError) is BadInputError and kind_of(TooManyImages) is TooLargeError


class Coded(BadInputError):
    """A refused upload with a reason code, as the image and batch errors are."""

    code = "planted_reason"


@pytest.fixture(scope="module")
def raising_client():
    """The real app with one more route under /v1 and /v2 that raises the named kind (or a coded error)."""
    client = make_client()
    errors = {kind.__name__: kind for kind in (*KINDS, Coded)}

    def raise_kind(name: str) -> None:
        raise errors[name](f"a {name} for the test")

    for prefix in ("/v1", "/v2"):
        client.app.add_api_route(f"{prefix}/raise/{{name}}", raise_kind, methods=["GET"])
    with client:
        yield client


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_each_kind_answers_its_status_with_the_message(raising_client, kind):
    response = raising_client.get(f"/v1/raise/{kind.__name__}")
    assert response.status_code == STATUS[kind]
    assert response.json() == {"status": STATUS[kind], "error": f"a {kind.__name__} for the test"}


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_each_kind_answers_the_open_inference_protocol_shape_under_v2(raising_client, kind):
    response = raising_client.get(f"/v2/raise/{kind.__name__}")
    assert response.status_code == STATUS[kind]
    assert response.json() == {"error": f"a {kind.__name__} for the test"}


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_only_a_busy_service_asks_for_a_retry(raising_client, kind):
    response = raising_client.get(f"/v1/raise/{kind.__name__}")
    assert response.headers.get("retry-after") == ("1" if kind is BusyError else None)


def test_an_error_with_a_code_is_counted_as_a_refused_upload_by_it(raising_client):
    assert raising_client.get("/v1/raise/Coded").status_code == 400
    assert any(
        line.startswith('convlens_rejected_uploads_total{reason="planted_reason"} 1')
        for line in metric_lines(raising_client)
    )
