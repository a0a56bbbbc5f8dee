"""Quality metrics on /v1/attribution/{method}?metrics: through the real app and the shipped classifier."""

from __future__ import annotations

import pytest

from tests.api.conftest import make_client


def post(client, method: str, png: bytes, query: str):
    return client.post(f"/v1/attribution/{method}?{query}", files={"image": ("d.png", png, "image/png")})


def test_metrics_all_answers_every_metric_but_the_completeness_gap_for_saliency(client, digit_png):
    metrics = post(client, "saliency", digit_png, "format=json&metrics=all").json()["metrics"]
    assert metrics["completeness_gap"] is None
    assert metrics["deletion"]["area"] < metrics["deletion"]["random_area"]
    assert set(metrics["sanity"]) == {"passes", "parameter_randomization", "random_logit"}
    assert len(metrics["sanity"]["parameter_randomization"]["similarity"]) == 4


def test_integrated_gradients_answers_its_completeness_gap(client, digit_png):
    metrics = post(client, "integrated-gradients", digit_png, "format=json&metrics=completeness_gap").json()["metrics"]
    assert abs(metrics["completeness_gap"]) < 1


def test_a_png_answer_carries_the_metrics_header(client, digit_png):
    answer = post(client, "saliency", digit_png, "metrics=sparseness,sanity")
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["x-attribution-metrics"].startswith("sparseness=0.")
    assert answer.headers["x-attribution-metrics"].split(";")[1] in ("sanity=pass", "sanity=fail")


@pytest.mark.parametrize("query", ["metrics=bogus", "metrics=completeness_gap"])
def test_an_unknown_or_inapplicable_metric_is_a_422_naming_it(client, digit_png, query):
    answer = post(client, "saliency", digit_png, f"format=json&{query}")
    assert answer.status_code == 422
    assert query.split("=")[1] in answer.json()["error"]


def test_metrics_over_the_work_limit_are_a_413_naming_the_limit(digit_png):
    with make_client(max_metric_work=100) as small:
        answer = post(small, "smoothgrad", digit_png, "format=json&metrics=max_sensitivity")
    assert answer.status_code == 413
    assert "max_metric_work" in answer.json()["error"]


@pytest.fixture(scope="module")
def small_budget():
    """The app with room for 5 passes per request: the sanity checks of saliency on the shipped classifier (its
    4 parametrised layers + the other class, one pass each) and nothing costlier."""
    with make_client(max_metric_work=5) as small:
        yield small


@pytest.mark.parametrize(
    ("metric", "passes"),
    [
        ("deletion", 66),
        ("insertion", 66),
        ("road_morf", 10),
        ("road_lerf", 10),
        ("faithfulness_correlation", 51),
        ("max_sensitivity", 10),
    ],
)
def test_each_metric_over_the_work_limit_is_a_413_naming_its_passes(small_budget, digit_png, metric, passes):
    answer = post(small_budget, "saliency", digit_png, f"format=json&metrics={metric}")
    assert answer.status_code == 413
    assert f"{metric} {passes}" in answer.json()["error"]


def test_metrics_exactly_at_the_work_limit_are_measured(small_budget, digit_png):
    answer = post(small_budget, "saliency", digit_png, "format=json&metrics=sanity,sparseness,effective_complexity")
    assert answer.status_code == 200
    assert answer.json()["metrics"]["sanity"]["passes"] is True
