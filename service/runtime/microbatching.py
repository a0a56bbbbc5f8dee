"""Dynamic micro-batching: concurrent single-image classifications share one onnxruntime run.

With ``window`` 0 (the default) it never waits: when the model is idle a request runs at once, and the requests
that arrive while it is busy run together as one batch when it frees up (Triton's dynamic batcher with a zero
queue delay). A positive ``window`` also holds the first waiting request that long to collect others. At most
``max_batch`` requests share a run; ``answer`` (``service.studies.classification.answering``) turns the stacked
images into one answer per image, and each caller gets its own.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from service.runtime.registry import LoadedModel, note_use


class MicroBatcher:
    """A background thread that answers the images submitted for one model in shared batches."""

    def __init__(
        self,
        model: LoadedModel,
        answer: Callable[[np.ndarray], Sequence[Any]],
        window: float,
        max_batch: int,
        observe_size: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.model = model
        self.answer = answer
        self.window = window
        self.max_batch = max_batch
        self._observe_size = observe_size
        self._pending: queue.Queue[tuple[np.ndarray, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=f"microbatch-{model.name}", daemon=True)
        self._thread.start()

    def submit(self, image: np.ndarray) -> Future:
        """A future of ``answer``'s answer for one 28x28 image, computed in a shared batch."""
        note_use(self.model)
        done: Future = Future()
        self._pending.put((image.reshape(28, 28), done))
        return done

    def close(self) -> None:
        """Stop the thread once the requests already queued are answered."""
        self._pending.put(None)
        self._thread.join(timeout=10)

    def _collect(self, first: tuple[np.ndarray, Future]) -> tuple[list[tuple[np.ndarray, Future]], bool]:
        """The first request and those already waiting (or arriving within the window); True when close() was
        asked meanwhile."""
        batch, deadline = [first], time.monotonic() + self.window
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._pending.get(timeout=remaining) if remaining > 0 else self._pending.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _serve(self) -> None:
        closing = False
        while not closing:
            first = self._pending.get()
            if first is None:
                return
            batch, closing = self._collect(first)
            self._observe_size(len(batch))
            try:
                answers = self.answer(np.stack([image for image, _ in batch]))
            except Exception as exc:  # every waiting caller gets the failure, e.g. Busy
                for _, done in batch:
                    done.set_exception(exc)
                continue
            for answer, (_, done) in zip(answers, batch):
                done.set_result(answer)
