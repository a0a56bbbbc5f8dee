"""A bound on concurrent inferences: excess requests wait briefly, then get 503 with Retry-After."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from service.errors import BusyError


class Busy(BusyError, RuntimeError):
    """Every inference slot stayed taken for the whole wait."""


class InferenceGate:
    """At most ``slots`` inferences at once; a caller waits up to ``wait_seconds`` for a free slot."""

    def __init__(
        self,
        slots: int,
        wait_seconds: float,
        observe: Callable[[str, float], None] = lambda model, seconds: None,
        on_busy: Callable[[], None] = lambda: None,
    ) -> None:
        self._slots = threading.BoundedSemaphore(slots)
        self._wait = wait_seconds
        self._observe = observe
        self._on_busy = on_busy

    @contextmanager
    def slot(self, model: str) -> Iterator[None]:
        """Hold one inference slot for ``model`` while the block runs, timing it."""
        if not self._slots.acquire(timeout=self._wait):
            self._on_busy()
            raise Busy(
                f"the service is busy: every inference slot stayed taken for {self._wait:g} s; retry after a second"
            )
        with self._held(model):
            yield

    def free_slot(self, model: str) -> AbstractContextManager[None] | None:
        """A slot for ``model`` taken now if one is free (held while the returned block runs), else None: for work
        too short to be worth a thread, which must never wait on the event loop."""
        return self._held(model) if self._slots.acquire(blocking=False) else None

    @contextmanager
    def _held(self, model: str) -> Iterator[None]:
        """Time the block that holds an acquired slot, then release the slot."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self._observe(model, time.perf_counter() - start)
            self._slots.release()
