"""Large onnxruntime runs shared out between threads that run at once on the same session, one thread each.

A run of SPLIT_FROM images or more (a classification batch's chunk, integrated-gradients steps, SmoothGrad
samples, occlusion squares) runs on ``batch_threads`` threads (0: one per core): cut into that many parts, or, for
classification batches, into runs of a few images that the threads take from a shared queue. On the idle 2-core
machine this beat one run on two intra-op threads, whose operator-level hand-offs cost more than they share (README,
Performance): 50 backward passes took 22-26 ms against 28-45 ms, and 1,000 classifications in runs of 6 about 61 ms,
as fast as bare onnxruntime on two intra-op threads at its best. Smaller runs stay whole: at batch 1 a second thread
only adds hand-offs.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from queue import Empty, SimpleQueue

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
    rows_per_run: int = 0,
) -> list[np.ndarray]:
    """``session.run(outputs, feeds, run_options)`` on ``parts`` threads at once (the caller's among them), the
    outputs put back together in order.

    With ``rows_per_run`` the feeds are cut into runs of that many images, which the threads take one after another
    from a shared queue (a thread that finishes early takes the next run, so none waits long for another at the
    end); else into ``parts`` pieces of (nearly) equal size, one per thread.
    """
    rows = len(next(iter(feeds.values())))
    if parts == 1 and (not rows_per_run or rows <= rows_per_run):
        return session.run(outputs, feeds, run_options)
    pieces = split_feeds(feeds, -(-rows // rows_per_run)) if rows_per_run else split_feeds(feeds, parts)
    queue: SimpleQueue[int] = SimpleQueue()
    for index in range(len(pieces)):
        queue.put(index)
    results: list[list[np.ndarray]] = [[] for _ in pieces]

    def take_runs() -> None:
        while True:
            try:
                index = queue.get_nowait()
            except Empty:
                return
            try:
                results[index] = session.run(outputs, pieces[index], run_options)
            except BaseException:
                _drain(queue)  # after a failure on any thread, the others stop after their current run
                raise

    others = [_pool(parts - 1).submit(take_runs) for _ in range(parts - 1)] if parts > 1 else []
    try:
        take_runs()
    finally:
        wait(others)  # no part outlives the call (and the inference slot its caller holds)
    for future in others:
        future.result()  # a failed run raises here
    return [np.concatenate([result[i] for result in results]) for i in range(len(outputs))]


def _drain(queue: SimpleQueue[int]) -> None:
    """Take every run still waiting in ``queue`` (another thread may be taking them at the same time)."""
    try:
        while True:
            queue.get_nowait()
    except Empty:
        return


def split_feeds(feeds: dict[str, np.ndarray], parts: int) -> list[dict[str, np.ndarray]]:
    """``feeds`` cut along the batch axis into ``parts`` consecutive pieces of (nearly) equal size."""
    rows = len(next(iter(feeds.values())))
    bounds = [rows * part // parts for part in range(parts + 1)]
    return [{name: array[a:b] for name, array in feeds.items()} for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    """The threads that run the other parts of a split run beside the caller's (one pool per size, made once)."""
    with _pools_lock:
        if workers not in _pools:
            _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="convlens-parts")
        return _pools[workers]
