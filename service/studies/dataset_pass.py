"""One streamed pass of the dataset analyses over a shard of a dataset, checkpointed and resumable.

Shard I of N takes the dataset's items I, I+N, I+2N, ... (strided, so that every shard sees every class in the same
proportion and the shards take the same time whatever the order of the classes on disk). Items are read and
preprocessed one batch ahead on a reader thread, while ``threads`` threads each run a batch through the model and add
it to a partial state of their own. Every ``checkpoint_every`` batches the partial states are merged into the pass's
(exactly: the merge of any split gives the same bytes), which is written atomically (``AnalysisState.save``) on a
checkpoint thread while the model threads go on with the next batches; it is merged and written once more at the end.
A pass started again on the same file continues from the last checkpoint, and the result equals an uninterrupted
pass's. Memory: ``threads`` + 2 batches, and ``threads`` + 1 states.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from queue import SimpleQueue

import numpy as np

from service.images.datasets import Dataset
from service.studies.dataset_analysis import AnalysedModel, AnalysisMismatch, AnalysisState

# Batches between checkpoints: 40 batches of 256 images are about two seconds of the shipped classifier on 2 cores.
CHECKPOINT_EVERY = 40


def part_name(shard: int, shards: int) -> str:
    """The file a shard's partial result is written to, e.g. ``part-0-of-2.npz``."""
    return f"part-{shard}-of-{shards}.npz"


def shard_items(count: int, shard: int, shards: int) -> range:
    """The dataset indices of shard ``shard`` of ``shards``: every ``shards``-th item from ``shard`` on."""
    if not 0 <= shard < shards:
        raise AnalysisMismatch(f"shard {shard} of {shards} does not exist: shards are numbered 0 to {shards - 1}")
    return range(shard, count, shards)


def _prepared(model: AnalysedModel, dataset: Dataset, indices: range) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The batch's usable items: their indices, labels and model inputs stacked; unreadable ones left out. Items of
    one shape that the model preprocesses as a whole (``preprocess_many``) are, in one array operation: a Python loop
    over the images here holds the interpreter lock the model threads need between their runs."""
    items = dataset.read_many(indices)
    together = None
    if items and all(item is not None and item.shape == items[0].shape for item in items):
        together = model.preprocess_many(np.stack(items))
    if together is not None:
        kept, inputs = np.arange(indices.start, indices.stop, indices.step, dtype=np.int64), together
    else:
        kept_list, rows = [], []
        for index, image in zip(indices, items, strict=True):
            if image is None:
                continue
            try:
                rows.append(model.preprocess(image))
            except ValueError:
                continue
            kept_list.append(index)
        kept = np.array(kept_list, np.int64)
        inputs = np.stack(rows) if rows else np.zeros((0,), np.float32)
    labels = dataset.labels[kept] if dataset.labels is not None else np.full(len(kept), -1, np.int64)
    return kept, labels.astype(np.int64), inputs


def resume_or_start(model: AnalysedModel, dataset: Dataset, path: Path, shard: int, shards: int) -> AnalysisState:
    """The checkpoint at ``path`` when it is this shard of this model and dataset, else a new state;
    AnalysisMismatch when ``path`` holds a partial result of something else."""
    if not path.exists():
        return AnalysisState.start(model, dataset.fingerprint, dataset.labels is not None, shard, shards)
    state = AnalysisState.load(path)
    same = (state.model_sha256, state.dataset, state.shard, state.shards) == (
        model.sha256,
        dataset.fingerprint,
        shard,
        shards,
    )
    if not same:
        raise AnalysisMismatch(
            f"{path} holds a partial analysis of another model, dataset or shard: remove it or choose another --out-dir"
        )
    return state


def run_pass(
    model: AnalysedModel,
    dataset: Dataset,
    path: Path,
    shard: int = 0,
    shards: int = 1,
    batch_size: int = 256,
    checkpoint_every: int = CHECKPOINT_EVERY,
    progress: Callable[[int, int, int], None] | None = None,
    threads: int = 0,
) -> AnalysisState:
    """Analyse shard ``shard`` of ``shards`` of ``dataset`` with ``model`` on ``threads`` threads (0: one per core),
    checkpointing to ``path``; the complete state. ``progress(done, total, skipped)`` is called once at the start
    and after every batch."""
    items = shard_items(dataset.count, shard, shards)
    state = resume_or_start(model, dataset, path, shard, shards)
    threads = threads or len(os.sched_getaffinity(0))
    if progress:
        progress(state.position, len(items), state.skipped)
    starts = range(state.position, len(items), batch_size)
    partials: SimpleQueue[AnalysisState] = SimpleQueue()
    for _ in range(threads):
        partials.put(_empty_like(state, model))

    def analyse(indices: np.ndarray, labels: np.ndarray, inputs: np.ndarray) -> None:
        norms, scores = model.norms(inputs)
        partial = partials.get()
        try:
            partial.add(norms, scores, indices, labels, inputs, model.picture)
        finally:
            partials.put(partial)

    def take_in(position: int, skipped: int) -> None:
        """Merge the partial states (every batch before ``position`` is in one) into ``state``."""
        for _ in range(threads):
            partial = partials.get()
            state.merge(partial)
            partials.put(_empty_like(state, model))
        state.position, state.skipped = position, skipped

    in_flight: deque[tuple[Future, int]] = deque()
    skipped = state.skipped
    saving: Future | None = None
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-reader") as reader,
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="analysis-run") as runners,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis-checkpoint") as checkpoints,
    ):
        pending = (
            reader.submit(_prepared, model, dataset, items[starts[0] : starts[0] + batch_size]) if starts else None
        )
        for number, start in enumerate(starts, 1):
            end = min(start + batch_size, len(items))
            indices, labels, inputs = pending.result()
            if end < len(items):
                pending = reader.submit(_prepared, model, dataset, items[end : end + batch_size])
            if len(inputs):
                in_flight.append((runners.submit(analyse, indices, labels, inputs), end))
            skipped += (end - start) - len(indices)
            while in_flight and (len(in_flight) >= threads or end == len(items) or number % checkpoint_every == 0):
                future, done = in_flight.popleft()
                future.result()
                if progress:
                    progress(done, len(items), skipped)
            if number % checkpoint_every == 0 and end < len(items):
                if saving is not None:
                    saving.result()
                take_in(end, skipped)
                saving = checkpoints.submit(state.save, path)
        if saving is not None:
            saving.result()
    take_in(len(items), skipped)
    state.complete = True
    state.save(path)
    return state


def _empty_like(state: AnalysisState, model: AnalysedModel) -> AnalysisState:
    """A state for the same model, dataset and shard, with no image in it."""
    return AnalysisState.start(model, state.dataset, state.labelled, state.shard, state.shards)
