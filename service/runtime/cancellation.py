"""Cooperative cancellation: work for a request that is gone stops at its next step boundary.

A worker thread cannot be killed, so a request that timed out or whose client hung up would otherwise keep its
thread computing to the end. Whoever starts the work binds a ``CancelToken`` (a context variable, which reaches
worker threads with the context); the long steps (each onnxruntime chunk, each image of a projection, decoding,
PNG encoding) call ``checkpoint()``, which raises ``Cancelled`` once the token is cancelled.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from service.errors import BusyError


class Cancelled(BusyError):
    """The request this work was for is gone; the message says why (timed out, client disconnected)."""


class CancelToken:
    """Set once, from anywhere (the event loop, a timer), read by the worker at its step boundaries."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    @property
    def cancelled(self) -> bool:
        return self.reason is not None


_current: ContextVar[CancelToken | None] = ContextVar("convlens_cancel_token", default=None)


def checkpoint() -> None:
    """Raise Cancelled when the work running in this context was cancelled; cheap enough to call often."""
    token = _current.get()
    if token is not None and token.reason is not None:
        raise Cancelled(token.reason)


@contextmanager
def bound(token: CancelToken) -> Iterator[CancelToken]:
    """Bind ``token`` to the work started in this context (and the threads it hands work to)."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)


def current_token() -> CancelToken | None:
    """The token bound to the work running in this context, if any."""
    return _current.get()
