"""Active filters: the paper's rule (L2 norm above the image's mean norm) and its options."""

import numpy as np
import pytest

from tests.helpers import post_image


def layer_norms(client, digit_png, layer, order):
    maps = np.array(post_image(client, f"/v1/activations/{layer}", digit_png).json()["values"])
    flat = maps.reshape(-1, maps.shape[-1])
    return {"l2": np.sqrt((flat**2).sum(0)), "l1": np.abs(flat).sum(0), "max": np.abs(flat).max(0)}[order]


@pytest.mark.parametrize("layer", ["conv1", "conv2", "pool"])
def test_active_filters_are_those_with_norm_above_the_mean_norm(client, digit_png, layer):
    body = post_image(client, f"/v1/active-filters/{layer}", digit_png).json()
    norms = layer_norms(client, digit_png, layer, "l2")
    assert body["norm"] == "l2" and body["threshold_rule"] == "mean"
    assert np.allclose(body["norms"], norms, rtol=1e-5)
    assert body["threshold"] == pytest.approx(norms.mean(), rel=1e-5)
    assert body["active"] == [k for k in range(len(norms)) if norms[k] > norms.mean()]


@pytest.mark.parametrize("order", ["l1", "max"])
def test_other_norms_are_recomputed_the_same_way(client, digit_png, order):
    body = post_image(client, "/v1/active-filters/conv1", digit_png, norm=order, threshold="median").json()
    norms = layer_norms(client, digit_png, "conv1", order)
    assert np.allclose(body["norms"], norms, rtol=1e-5)
    assert body["active"] == [k for k in range(32) if norms[k] > np.median(norms)]


def test_a_fixed_number_is_a_threshold(client, digit_png):
    body = post_image(client, "/v1/active-filters/conv2", digit_png, threshold="10.5").json()
    assert body["threshold"] == 10.5
    assert body["active"] == [k for k, n in enumerate(body["norms"]) if n > 10.5]


def test_an_unknown_threshold_rule_is_422_naming_the_choices(client, digit_png):
    response = post_image(client, "/v1/active-filters/conv1", digit_png, threshold="most")
    assert response.status_code == 422
    assert response.json()["error"] == "threshold must be one of mean, median, dataset or a number, got 'most'"


def test_dense_layers_have_no_active_filters(client, digit_png):
    response = post_image(client, "/v1/active-filters/dense1", digit_png)
    assert response.status_code == 422
    assert response.json()["error"] == "layer 'dense1' has no feature maps; spatial layers: conv1, conv2, pool"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_threshold_that_is_not_a_finite_number_is_422(client, digit_png, value):
    response = post_image(client, "/v1/active-filters/conv1", digit_png, threshold=value)
    assert response.status_code == 422 and "or a number" in response.json()["error"]
