"""``service.studies.classification`` against the raw outputs of the shipped classifier: onnxruntime on the ONNX
file itself, and the digit judge's own numpy formula."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from service.contract import INPUT_NAME
from service.runtime.inference_gate import InferenceGate
from service.runtime.registry import load_registry
from service.studies.classification import NO_JUDGEMENT, classify, layers_of, outputs_for
from service.studies.digit_judge import OUTPUTS, SCORE
from service.studies.digit_judge_graph import attach_judges
from service.studies.layers import NotApplicable
from service.studies.statistics import load_all_statistics
from tests.helpers import MODELS
from training import nondigits


@pytest.fixture(scope="module")
def served():
    """The registry as the service serves it (the judge's score in the classifier's run) and its statistics."""
    registry = load_registry(MODELS, 1, InferenceGate(1, 0.1), variants=False)
    statistics = load_all_statistics(MODELS, registry)
    attach_judges(registry, statistics)
    return registry, statistics


@pytest.fixture(scope="module")
def judge(served):
    judge = served[1].judge("classifier")
    assert judge is not None, "the shipped statistics have no digit judge"
    return judge


@pytest.fixture(scope="module")
def images(mnist_test) -> np.ndarray:
    """Real test digits and uniform noise, float32 in [0, 1]."""
    return np.concatenate([mnist_test[0][:40].astype(np.float32) / 255.0, nondigits.uniform_noise(10, seed=2)])


@pytest.fixture(scope="module")
def raw(images) -> dict[str, np.ndarray]:
    """The ONNX file's own outputs for ``images``, from a session of its own."""
    session = ort.InferenceSession(str(MODELS / "classifier.onnx"), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {INPUT_NAME: images.reshape(-1, 28, 28, 1)})))


def test_the_probabilities_are_the_files_output_and_the_digit_its_largest(served, judge, images, raw):
    answers = classify(served[0].models["classifier"], images, judge).answers()
    assert np.array_equal([answer["probabilities"] for answer in answers], raw["output"].tolist())
    assert [answer["digit"] for answer in answers] == raw["output"].argmax(axis=1).tolist()


def test_the_judgement_is_the_judges_own_formula_over_the_files_outputs(served, judge, images, raw):
    answers = classify(served[0].models["classifier"], images, judge).answers()
    expected = judge.scores(images, raw)
    assert np.allclose([answer["digit_like_score"] for answer in answers], expected, rtol=1e-5, atol=1e-5)
    assert all(answer["digit_like_threshold"] == judge.threshold for answer in answers)
    assert [answer["digit_like"] for answer in answers] == [a["digit_like_score"] <= judge.threshold for a in answers]
    assert not all(answer["digit_like"] for answer in answers[-10:])  # the noise


def test_without_a_judge_the_run_asks_only_the_probabilities_and_the_judgement_is_null(served, images, raw):
    classified = classify(served[0].models["classifier"], images, None)
    assert list(classified.outputs) == ["output"]
    answers = classified.answers()
    assert all({field: answer[field] for field in NO_JUDGEMENT} == NO_JUDGEMENT for answer in answers)
    assert np.array_equal([answer["probabilities"] for answer in answers], raw["output"].tolist())


def test_a_run_that_computes_the_score_is_asked_for_it(served, judge):
    assert outputs_for(served[0].models["classifier"], judge) == ["output", SCORE]


def test_a_run_without_the_score_is_asked_for_what_the_judges_numpy_path_reads(judge, images, served):
    plain = load_registry(MODELS, 1, InferenceGate(1, 0.1), variants=False).models["classifier"]
    assert outputs_for(plain, judge) == list(OUTPUTS)
    numpy_scores = [answer["digit_like_score"] for answer in classify(plain, images, judge).answers()]
    graph_scores = [a["digit_like_score"] for a in classify(served[0].models["classifier"], images, judge).answers()]
    assert np.allclose(numpy_scores, graph_scores, rtol=1e-5, atol=1e-5)


def test_layers_asked_for_come_after_the_classifications_own_once_each(served, judge, images, raw):
    model = served[0].models["classifier"]
    assert outputs_for(model, judge, ["conv1", "output", "pool"]) == ["output", SCORE, "conv1", "pool"]
    outputs = classify(model, images, judge, ["conv1", "pool"]).outputs
    assert np.allclose(outputs["conv1"], raw["conv1"], atol=1e-6) and np.allclose(
        outputs["pool"], raw["pool"], atol=1e-6
    )


def test_a_model_that_does_not_classify_is_not_applicable(served, images):
    with pytest.raises(NotApplicable, match="does not classify"):
        classify(served[0].models["autoencoder"], images, None)


def test_now_runs_at_once_only_with_a_free_slot(served, judge, images):
    model = served[0].models["classifier"]
    assert classify(model, images[:1], judge, now=True) is not None
    with model.gate.slot("the test"):  # its gate's only slot
        assert classify(model, images[:1], judge, now=True) is None


def test_layers_of_the_autoencoder_are_a_run_of_them_alone(served, images):
    autoencoder = served[0].models["autoencoder"]
    assert list(layers_of(autoencoder, images[:2], ["decoded"])) == ["decoded"]


def test_layers_of_a_classifier_are_its_classifications(served, images, raw):
    outputs = layers_of(served[0].models["classifier"], images, ["dense1"])
    assert np.allclose(outputs["dense1"], raw["dense1"], atol=1e-6)
    assert np.array_equal(outputs["output"], raw["output"])
