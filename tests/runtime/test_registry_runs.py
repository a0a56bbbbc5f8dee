"""How the registry runs a model: a single image at once on the caller's thread when a slot is free, else not."""

import numpy as np
import pytest

from service.runtime.inference_gate import InferenceGate
from service.runtime.registry import load_registry
from tests.helpers import MODELS

OUTPUTS = ["dense1", "output"]


@pytest.fixture(scope="module")
def gated():
    gate = InferenceGate(slots=1, wait_seconds=0.05)
    return gate, load_registry(MODELS, 1, gate, variants=False).models["classifier"]


def digit(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 28, 28), dtype=np.float32)


def test_a_single_image_run_now_equals_the_ordinary_run(gated):
    _, model = gated
    now, ordinary = model.run_now(digit(), OUTPUTS), model.run(digit(), OUTPUTS)
    for name in OUTPUTS:
        np.testing.assert_array_equal(now[name], ordinary[name])


def test_run_now_declines_when_every_inference_slot_is_taken(gated):
    gate, model = gated
    with gate.slot("held by the test"):
        assert model.run_now(digit(), OUTPUTS) is None
    assert model.run_now(digit(), OUTPUTS) is not None  # and it gave its slot back


def test_run_now_declines_more_than_one_image(gated):
    _, model = gated
    assert model.run_now(np.concatenate([digit(0), digit(1)]), OUTPUTS) is None
