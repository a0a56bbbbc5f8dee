"""Dynamic micro-batching: concurrent small requests to one shipped model share one onnxruntime run.

Each caller submits its images (N, 28, 28) and the outputs it needs; a background thread stacks what is waiting
into one ``run`` (``service.studies.classification.layers_of``: a classifier's run goes through ``classify``)
asking for every output any of them needs, and hands each caller its own rows of the outputs it asked for. A
model's run answers each image the same whichever images share it (onnxruntime's CPU kernels compute each row
alone: ``tests/api/test_batching.py`` checks the answers equal the one-by-one ones bit for bit), so sharing changes
only when the answer comes.

With ``window`` 0 (the default) it never waits: when the model is idle a request runs at once, and the requests
that arrive while it is busy run together as one batch when it frees up (Triton's dynamic batcher with a zero
queue delay). A positive ``window`` also holds the first waiting request that long to collect others. A run holds
at most ``max_images`` images; a request that would not fit waits for the next run. ``MicroBatchers`` keeps one
batcher per model, started on its first request.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from service.runtime.registry import LoadedModel, as_batch, note_use

Outputs = dict[str, np.ndarray]
Run = Callable[[LoadedModel, np.ndarray, list[str]], Outputs]


@dataclass(frozen=True)
class _Waiting:
    """One caller's images (N, 28, 28, 1), the outputs it asked for, and the future of its answer."""

    images: np.ndarray
    outputs: tuple[str, ...]
    done: Future


class MicroBatcher:
    """A background thread that answers the requests submitted for one model in shared runs."""

    def __init__(
        self,
        model: LoadedModel,
        run: Run,
        window: float,
        max_images: int,
        observe_size: Callable[[int], None] = lambda size: None,
    ) -> None:
        """``run(model, images, outputs)``: at least ``outputs`` of ``model``'s run over ``images``."""
        self.model = model
        self.run = run
        self.window = window
        self.max_images = max_images
        self._observe_size = observe_size
        self._pending: queue.Queue[_Waiting | None] = queue.Queue()
        self._carried: _Waiting | None = None
        self._thread = threading.Thread(target=self._serve, name=f"microbatch-{model.name}", daemon=True)
        self._thread.start()

    def takes(self, count: int) -> bool:
        """Whether a request of ``count`` images fits in one shared run."""
        return 1 <= count <= self.max_images

    def submit(self, images: np.ndarray, outputs: Sequence[str]) -> Future[Outputs]:
        """A future of ``outputs`` (name -> array, one row per image) of the model's run over ``images``
        ((N, 28, 28) or (N, 28, 28, 1), ``takes(N)``), computed in a shared run."""
        batch = as_batch(images)
        if not self.takes(len(batch)):
            raise ValueError(f"a shared run takes 1 to {self.max_images} images, not {len(batch)}")
        note_use(self.model)
        done: Future[Outputs] = Future()
        self._pending.put(_Waiting(batch, tuple(outputs), done))
        return done

    def close(self) -> None:
        """Stop the thread once the requests already queued are answered."""
        self._pending.put(None)
        self._thread.join(timeout=10)

    def _next(self, timeout: float | None) -> _Waiting | None:
        """The next waiting request (the one a full run left over first); queue.Empty after ``timeout``
        (0: only one already waiting); None when close() was asked."""
        if self._carried is not None:
            waiting, self._carried = self._carried, None
            return waiting
        if timeout is None:
            return self._pending.get()
        return self._pending.get(timeout=timeout) if timeout > 0 else self._pending.get_nowait()

    def _collect(self, first: _Waiting) -> tuple[list[_Waiting], bool]:
        """The first request and those already waiting (or arriving within the window) that fit in one run; True
        when close() was asked meanwhile."""
        batch, images, deadline = [first], len(first.images), time.monotonic() + self.window
        while images < self.max_images:
            try:
                waiting = self._next(max(deadline - time.monotonic(), 0))
            except queue.Empty:
                break
            if waiting is None:
                return batch, True
            if images + len(waiting.images) > self.max_images:
                self._carried = waiting
                break
            batch.append(waiting)
            images += len(waiting.images)
        return batch, False

    def _serve(self) -> None:
        closing = False
        while not closing:
            first = self._next(None)
            if first is None:
                return
            batch, closing = self._collect(first)
            stacked = batch[0].images if len(batch) == 1 else np.concatenate([waiting.images for waiting in batch])
            self._observe_size(len(stacked))
            names = list(dict.fromkeys(name for waiting in batch for name in waiting.outputs))
            try:
                results = self.run(self.model, stacked, names)
            except Exception as exc:  # every waiting caller gets the failure, e.g. Busy
                for waiting in batch:
                    waiting.done.set_exception(exc)
                continue
            start = 0
            for waiting in batch:
                end = start + len(waiting.images)
                waiting.done.set_result({name: results[name][start:end] for name in waiting.outputs})
                start = end


class MicroBatchers:
    """One MicroBatcher per shipped model, its thread started on the model's first shared request."""

    def __init__(
        self, run: Run, window: float, max_images: int, observe_size: Callable[[int], None] = lambda size: None
    ) -> None:
        self.run = run
        self.window = window
        self.max_images = max_images
        self._observe_size = observe_size
        self._batchers: dict[str, MicroBatcher] = {}
        self._lock = threading.Lock()

    def of(self, model: LoadedModel) -> MicroBatcher:
        """``model``'s batcher."""
        batcher = self._batchers.get(model.name)
        if batcher is None:
            with self._lock:
                batcher = self._batchers.get(model.name)
                if batcher is None:
                    batcher = MicroBatcher(model, self.run, self.window, self.max_images, self._observe_size)
                    self._batchers[model.name] = batcher
        return batcher

    def close(self) -> None:
        """Stop every batcher once the requests already queued are answered."""
        with self._lock:
            for batcher in self._batchers.values():
                batcher.close()
            self._batchers.clear()
