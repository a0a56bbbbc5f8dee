"""``explain_now``: a map of one image computed on the calling thread only when that is one run taking no wait, and
then the same map as ``explain``'s."""

from __future__ import annotations

import numpy as np
import pytest

from service.runtime.inference_gate import InferenceGate
from service.runtime.registry import load_registry
from service.studies import explain as explain_module
from service.studies.explain import explain, explain_now
from tests.helpers import MODELS


@pytest.fixture(scope="module")
def model():
    """The shipped classifier behind a gate of one slot."""
    return load_registry(MODELS, 1, InferenceGate(1, 0.1), variants=False).models["classifier"]


@pytest.fixture(scope="module")
def digit(mnist_test) -> np.ndarray:
    return mnist_test[0][:1].astype(np.float32) / 255.0


@pytest.mark.parametrize("method", ["grad-cam", "layer-cam", "eigen-cam", "saliency", "guided-backprop"])
def test_a_one_pass_map_now_is_explains_map(model, digit, method):
    threaded = explain(model, digit, method)
    now = explain_now(model, digit, method)
    assert now is not None
    assert np.array_equal(now.values, threaded.values) and np.array_equal(now.pixels, threaded.pixels)
    assert now.targets.tolist() == threaded.targets.tolist()
    assert np.array_equal(now.probabilities, threaded.probabilities)


@pytest.mark.parametrize("method", ["integrated-gradients", "smoothgrad", "score-cam", "occlusion"])
def test_a_map_of_several_runs_is_not_made_now(model, digit, method):
    assert explain_now(model, digit, method) is None


def test_a_method_is_made_now_only_once_it_ran_at_its_defaults_on_the_model(model, digit, monkeypatch):
    monkeypatch.setattr(explain_module, "_warm", set())  # nothing explained yet in this process
    assert explain_now(model, digit, "hires-cam") is None
    explain(model, digit, "hires-cam", parameters={"layer": "pool"})
    assert explain_now(model, digit, "hires-cam") is None  # another layer's session
    explain(model, digit, "hires-cam")
    assert explain_now(model, digit, "hires-cam") is not None


def test_no_map_is_made_now_without_a_free_slot(model, digit):
    explain(model, digit, "grad-cam")
    with model.gate.slot("the test"):  # its gate's only slot
        assert explain_now(model, digit, "grad-cam") is None
    assert explain_now(model, digit, "grad-cam") is not None


def test_a_batch_is_not_made_now(model, mnist_test):
    assert explain_now(model, mnist_test[0][:2].astype(np.float32) / 255.0, "grad-cam") is None
