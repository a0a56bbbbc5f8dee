"""Adding an attribution method is its module and its registration line: ``explain`` and the API serve a method
registered here, with the traits it declares (signedness, its parameter's limit, its cost per image), and name no
method themselves."""

from __future__ import annotations

from operator import itemgetter

import numpy as np
import pytest

from service.attribution import METHODS
from service.attribution.inputs import Range, RunFn, batch
from service.attribution.method import Limits, Method
from service.graphs.classifier_weights import ClassifierWeights
from service.runtime.registry import load_registry
from service.studies.explain import TooMuchWork, explain
from service.studies.layers import NotApplicable
from tests.api.conftest import make_client
from tests.helpers import MODELS, encode

COPIES = Range(default=3, low=1, high=100, text="copies", limit="max_samples")


def darkness(
    run: RunFn, weights: ClassifierWeights, images: np.ndarray, targets: np.ndarray, copies: int = COPIES.default
) -> np.ndarray:
    """How dark each pixel is, times ``copies``: a map that is never negative, costing ``copies`` runs."""
    COPIES.check("copies", copies)
    x, _ = batch(images, targets)
    return (1 - x) * copies


DARKNESS = Method("darkness", darkness, parameters={"copies": COPIES}, signed=False, evaluations=itemgetter("copies"))


@pytest.fixture
def registered(monkeypatch):
    """The registry with DARKNESS registered as ``service.attribution`` registers its methods."""
    monkeypatch.setitem(METHODS, DARKNESS.name, DARKNESS)


@pytest.fixture(scope="module")
def model():
    return load_registry(MODELS, variants=False).models["classifier"]


@pytest.fixture(scope="module")
def images(mnist_test) -> np.ndarray:
    return mnist_test[0][:5].astype(np.float32) / 255


def test_a_registered_method_is_explained_with_its_maps_and_its_signedness(registered, model, images):
    result = explain(model, images[:2], "darkness", parameters={"copies": 2})
    np.testing.assert_array_equal(result.values, (1 - images[:2]) * 2)
    np.testing.assert_array_equal(result.pixels, result.values)
    assert result.signed is False and result.parameters == {"copies": 2}


def test_a_registered_methods_parameter_is_bounded_by_the_limit_it_names(registered, model, images):
    with pytest.raises(NotApplicable, match=r"copies must be an integer in \[1, 50\], got 60"):
        explain(model, images[:1], "darkness", parameters={"copies": 60}, limits=Limits(max_samples=50))


def test_a_registered_methods_cost_per_image_counts_against_the_batch_limit(registered, model, images):
    with pytest.raises(TooMuchWork, match=r"5 images x 30 evaluations each \(darkness\) is 150"):
        explain(model, images, "darkness", parameters={"copies": 30}, limits=Limits(max_batch_work=100))


def test_the_api_serves_a_registered_method(registered, mnist_test):
    with make_client() as client:
        response = client.post(
            "/v1/attribution/darkness", params={"format": "json"}, files={"image": encode(mnist_test[0][0])}
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["method"] == "darkness" and answer["signed"] is False and answer["parameters"] == {"copies": 3}


def test_the_pages_menu_lists_a_registered_method_with_its_title(registered):
    with make_client() as client:
        response = client.get("/attribution-methods.json")
    assert response.status_code == 200
    methods = response.json()["methods"]
    assert [m["name"] for m in methods] == list(METHODS)
    assert methods[-1] == {"name": "darkness", "title": "darkness", "text": "", "signed": False, "selected": False}
    assert [m["name"] for m in methods if m["selected"]] == ["integrated-gradients"]
