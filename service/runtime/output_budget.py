"""A per-request budget of output pixels: every upscaled picture charges it, so that ``scale`` × tiles stays bounded.

A request may ask for a large ``scale`` and draw many tiles (a grid of 64 maps, one tile per served model); the
picture's buffers grow with their product. Whoever starts the work binds a budget (a context variable, which reaches
worker threads with the context); ``upscale_nearest`` charges it before allocating, and ``OutputTooLarge`` says what
the picture would have needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from service.errors import NotApplicableError


class OutputTooLarge(NotApplicableError, ValueError):
    """The pictures of one request would have more pixels than its budget."""


class PixelBudget:
    """Output pixels one request may still draw."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, pixels: int, scale: int) -> None:
        """Count ``pixels`` more, or raise OutputTooLarge naming the total and the largest scale that fits."""
        if self.used + pixels > self.limit:
            unscaled = max(1, (self.used + pixels) // (scale * scale))
            fits = max(1, int((self.limit / unscaled) ** 0.5))
            raise OutputTooLarge(
                f"the picture would have {self.used + pixels:,} pixels at scale {scale}, over the limit of "
                f"{self.limit:,} per request: ask for scale {min(fits, scale - 1) if scale > 1 else 1} or less, "
                "or fewer tiles"
            )
        self.used += pixels


_current: ContextVar[PixelBudget | None] = ContextVar("convlens_pixel_budget", default=None)


def charge(pixels: int, scale: int) -> None:
    """Charge the budget bound to this context, if any (offline callers such as training have none)."""
    budget = _current.get()
    if budget is not None:
        budget.charge(pixels, scale)


@contextmanager
def pixel_budget(limit: int) -> Iterator[PixelBudget]:
    """Bind a budget of ``limit`` output pixels to the work started in this context."""
    budget = PixelBudget(limit)
    reset = _current.set(budget)
    try:
        yield budget
    finally:
        _current.reset(reset)
