"""The metrics tell a poor explanation from a good one on the shipped classifier: explanations that ignore the
model (a constant map, the image's own edges, seeded noise) fail the sanity checks and score as unfaithful, where
saliency of the trained model passes and scores as faithful. Through ``service.quality.report.measure``, the
function the API calls, with the real onnxruntime model."""

from __future__ import annotations

import numpy as np
import pytest

from service.graphs.backward_graph import graphs_of
from service.graphs.classifier_graph import forward_model
from service.graphs.classifier_weights import CLASSES, classifier_weights
from service.quality import randomisation
from service.quality.report import MetricLimits, Subject, measure
from tests.quality.conftest import logits_of, saliency_of


def edges(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The gradient magnitude of the image itself: an edge detector, blind to the model and the target."""
    rows, cols = np.gradient(np.asarray(images, np.float64), axis=(1, 2))
    return np.hypot(rows, cols)


def constant(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    return np.ones(np.shape(images))


def noise(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Seeded uniform noise, one draw per image position in the batch: blind to the model."""
    return np.random.default_rng(0).random(np.shape(images))


def subject(graph, weights, images, targets, explain, explainer_for) -> Subject:
    def probabilities(x: np.ndarray) -> np.ndarray:
        return graphs_of(weights).run("forward", forward_model, {"input": x.astype(np.float32)}, ["probabilities"])[0]

    return Subject(
        images=images,
        targets=targets,
        maps=np.asarray(explain(images, targets)),
        logits=logits_of(weights),
        probabilities=probabilities,
        explain=explain,
        evaluations=1,
        graph=graph,
        explainer_for=explainer_for,
        classes=CLASSES,
    )


def measured(graph, weights, sample, name: str, metric: str) -> list:
    images, targets = sample[0], sample[1]
    if name == "saliency":
        measured_subject = subject(
            graph, weights, images, targets, saliency_of(weights), lambda copy: saliency_of(classifier_weights(copy))
        )
    else:
        blind = {"edges": edges, "constant": constant, "noise": noise}[name]
        measured_subject = subject(graph, weights, images, targets, blind, lambda copy: blind)
    return [row[metric] for row in measure(measured_subject, (metric,), MetricLimits())]


def test_saliency_of_the_trained_model_passes_both_sanity_checks(graph, weights, sample):
    answers = measured(graph, weights, sample, "saliency", "sanity")
    assert all(answer["parameter_randomization"]["passes"] for answer in answers)
    assert all(answer["random_logit"]["passes"] for answer in answers)


def test_saliency_maps_of_the_trained_and_the_fully_randomised_model_differ(graph, weights, sample):
    images, targets, maps = sample
    (_, copy) = randomisation.randomised_cascade(graph)[-1]
    randomised_maps = saliency_of(classifier_weights(copy))(images, targets)
    assert not randomisation.same_maps(maps, randomised_maps).any()
    rank, _ = randomisation.compared(maps, randomised_maps, magnitudes=True)
    assert (rank < randomisation.SPEARMAN_THRESHOLD).all()


@pytest.mark.parametrize("name", ["edges", "constant"])
def test_an_explanation_blind_to_the_model_fails_both_sanity_checks(graph, weights, sample, name):
    answers = measured(graph, weights, sample, name, "sanity")
    assert not any(answer["parameter_randomization"]["passes"] for answer in answers)
    assert not any(answer["random_logit"]["passes"] for answer in answers)
    assert not any(answer["passes"] for answer in answers)


def test_a_constant_explanation_has_no_faithfulness_correlation(graph, weights, sample):
    """Every subset of a constant map sums to the same: no correlation with the score's drop (null in JSON)."""
    assert measured(graph, weights, sample, "constant", "faithfulness_correlation") == [None] * len(sample[0])


def test_noise_scores_near_zero_faithfulness_correlation_where_saliency_scores_well_above(graph, weights, sample):
    blind = np.array(measured(graph, weights, sample, "noise", "faithfulness_correlation"))
    trained = np.array(measured(graph, weights, sample, "saliency", "faithfulness_correlation"))
    assert abs(blind.mean()) < 0.1
    assert trained.mean() > blind.mean() + 0.25


def test_noise_deletes_no_better_than_a_random_order_where_saliency_deletes_faster(graph, weights, sample):
    def margins(name: str) -> np.ndarray:
        rows = measured(graph, weights, sample, name, "deletion")
        return np.array([row["random_area"] - row["area"] for row in rows])

    assert margins("noise").mean() < 0.05
    assert margins("saliency").mean() > 0.2
