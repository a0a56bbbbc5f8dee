"""Large onnxruntime runs cut into parts that run at once on the same session, one thread each.

A run of SPLIT_FROM images or more (a classification batch's chunk, integrated-gradients steps, SmoothGrad
samples, occlusion squares) is cut into ``batch_threads`` parts (0: one per core). On the idle 2-core machine this
beat one run on two intra-op threads, whose operator-level hand-offs cost more than they share (README,
Performance): 50 backward passes took 22-26 ms against 28-45 ms, and 1,000 classifications in chunks of 64 took
70-73 ms against 79-90 ms. Smaller runs stay whole: at batch 1 a second thread only adds hand-offs.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import onnxruntime as ort

SPLIT_FROM = 32  # images per run from which a run is cut into parts


def parts_for(rows: int, batch_threads: int) -> int:
    """Into how many parts a run of ``rows`` images is cut: ``batch_threads`` (0: one per core) from SPLIT_FROM
    images on, else 1."""
    return min(rows, batch_threads or len(os.sched_getaffinity(0))) if rows >= SPLIT_FROM else 1


def run_split(
    session: ort.InferenceSession,
    outputs: list[str],
    feeds: dict[str, np.ndarray],
    parts: int,
    run_options: ort.RunOptions | None = None,
) -> list[np.ndarray]:
    """``session.run(outputs, feeds, run_options)`` with the feeds cut into ``parts`` pieces that run at once (the
    caller's thread runs the first), the outputs put back together in order."""
    if parts == 1:
        return session.run(outputs, feeds, run_options)
    pieces = split_feeds(feeds, parts)
    others = [_pool(parts - 1).submit(session.run, outputs, piece, run_options) for piece in pieces[1:]]
    try:
        first = session.run(outputs, pieces[0], run_options)
    finally:
        wait(others)  # no part outlives the call (and the inference slot its caller holds)
    results = [first, *(future.result() for future in others)]
    return [np.concatenate([result[i] for result in results]) for i in range(len(outputs))]


def split_feeds(feeds: dict[str, np.ndarray], parts: int) -> list[dict[str, np.ndarray]]:
    """``feeds`` cut along the batch axis into ``parts`` consecutive pieces of (nearly) equal size."""
    bounds = np.linspace(0, len(next(iter(feeds.values()))), parts + 1).astype(int)
    return [{name: array[a:b] for name, array in feeds.items()} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The threads that run the other parts of a split run beside the caller's (one pool per size, made once)."""
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="convlens-parts")
        return _pools[workers]
