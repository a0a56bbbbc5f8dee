"""Large runs cut into parts that run at once on one session: the same outputs as one run, in order."""

import threading
import time

import numpy as np
import pytest

from service.runtime.inference_gate import InferenceGate
from service.runtime.registry import CHUNK, ROWS_PER_RUN, load_registry
from service.runtime.split_runs import SPLIT_FROM, parts_for, run_split, split_feeds
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


class RecordingSession:
    """A session that records which thread ran how many images, each run taking at least ``pause`` seconds (so
    that every thread has time to take a share), and fails at run number ``fail_at``."""

    def __init__(self, session, pause: float = 0.0, fail_at: int | None = None) -> None:
        self.session, self.pause, self.fail_at = session, pause, fail_at
        self.runs: list[tuple[int, int]] = []

    def run(self, outputs, feeds, run_options=None):
        self.runs.append((threading.get_ident(), len(next(iter(feeds.values())))))
        if len(self.runs) == self.fail_at:
            raise RuntimeError("this run fails")
        time.sleep(self.pause)
        return self.session.run(outputs, feeds, run_options)


def test_runs_of_a_few_images_shared_by_the_threads_give_the_outputs_of_one_run(classifier):
    feeds = {"input": images(70)}
    whole = classifier.session.run(OUTPUTS, feeds)
    recording = RecordingSession(classifier.session, pause=0.005)
    got = run_split(recording, OUTPUTS, feeds, 2, rows_per_run=6)
    assert sorted(rows for _, rows in recording.runs) == [5] * 2 + [6] * 10  # 12 runs of at most 6 images
    assert len({thread for thread, _ in recording.runs}) == 2
    for got_output, expected in zip(got, whole, strict=True):
        np.testing.assert_allclose(got_output, expected, rtol=1e-5, atol=1e-6)


def test_one_thread_runs_every_run_itself(classifier):
    recording = RecordingSession(classifier.session)
    run_split(recording, OUTPUTS, {"input": images(20)}, 1, rows_per_run=6)
    assert [rows for _, rows in recording.runs] == [5, 5, 5, 5]
    assert {thread for thread, _ in recording.runs} == {threading.get_ident()}


def test_a_failed_run_raises_and_the_other_threads_take_no_more_runs(classifier):
    recording = RecordingSession(classifier.session, pause=0.005, fail_at=3)
    with pytest.raises(RuntimeError, match="this run fails"):
        run_split(recording, OUTPUTS, {"input": images(120)}, 2, rows_per_run=6)
    assert len(recording.runs) < 20  # of 20 runs, only those already started when the third failed


def test_a_classification_batch_runs_in_runs_of_a_few_images_on_every_batch_thread(classifier):
    batch = images(CHUNK + 40)  # one full chunk and a smaller one
    classifier.batch_threads = 1
    whole = classifier.run(batch, OUTPUTS)
    session = classifier.session
    classifier.session = recording = RecordingSession(session, pause=0.001)
    classifier.batch_threads = 2
    try:
        in_runs = classifier.run(batch, OUTPUTS)
    finally:
        classifier.session = session
    assert sum(rows for _, rows in recording.runs) == len(batch)
    assert max(rows for _, rows in recording.runs) <= ROWS_PER_RUN
    assert len({thread for thread, _ in recording.runs}) == 2
    for name in OUTPUTS:
        np.testing.assert_allclose(in_runs[name], whole[name], rtol=1e-5, atol=1e-6)
