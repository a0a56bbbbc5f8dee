"""Large runs cut into parts that run at once on one session: the same outputs as one run, in order."""

import numpy as np
import pytest

from service import split_runs
from service.inference_gate import InferenceGate
from service.registry import CHUNK, load_registry
from service.split_runs import SPLIT_FROM, parts_for, run_split, split_feeds
from tests.helpers import MODELS

OUTPUTS = ["dense1", "output"]


@pytest.fixture(scope="module")
def classifier():
    return load_registry(MODELS, 1, InferenceGate(slots=4, wait_seconds=1), variants=False).models["classifier"]


def images(count: int) -> np.ndarray:
    return np.random.default_rng(count).random((count, 28, 28, 1), dtype=np.float32)


def test_split_feeds_cuts_every_feed_into_consecutive_pieces_of_nearly_equal_size():
    feeds = {"images": np.arange(70 * 2).reshape(70, 2), "seeds": np.arange(70)}
    pieces = split_feeds(feeds, 3)
    assert [len(piece["seeds"]) for piece in pieces] == [23, 23, 24]
    for name, array in feeds.items():
        np.testing.assert_array_equal(np.concatenate([piece[name] for piece in pieces]), array)


def test_runs_below_the_threshold_stay_whole_and_larger_ones_get_one_part_per_thread():
    assert parts_for(SPLIT_FROM - 1, 2) == 1
    assert parts_for(SPLIT_FROM, 2) == 2
    assert parts_for(SPLIT_FROM, 3) == 3
    assert parts_for(SPLIT_FROM, 1) == 1


def test_a_run_in_three_parts_gives_the_outputs_of_one_run(classifier):
    feeds = {"input": images(70)}
    whole = classifier.session.run(OUTPUTS, feeds)
    for got, expected in zip(run_split(classifier.session, OUTPUTS, feeds, 3), whole, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_classification_batch_cuts_each_chunk_into_parts(classifier, monkeypatch):
    batch = images(3 * CHUNK + SPLIT_FROM - 10)  # three full chunks and one below the threshold
    classifier.batch_threads = 1
    whole = classifier.run(batch, OUTPUTS)
    cuts = []
    split = split_runs.split_feeds
    monkeypatch.setattr(split_runs, "split_feeds", lambda feeds, parts: cuts.append(parts) or split(feeds, parts))
    classifier.batch_threads = 2
    in_parts = classifier.run(batch, OUTPUTS)
    assert cuts == [2, 2, 2]
    for name in OUTPUTS:
        np.testing.assert_allclose(in_parts[name], whole[name], rtol=1e-5, atol=1e-6)
