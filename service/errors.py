"""The kinds of failure the core reports: every exception the core raises for its callers derives from one of them.

A kind says what went wrong from the caller's side (bad input, nothing by that name, a request over a limit, ...);
the HTTP wing maps each kind to its status once (``service.api.errors``), so a new error in the core needs no
handler of its own. A class's kind is the first kind in its method resolution order: a subclass may name a more
specific kind before its family (``class TooManyImages(TooLargeError, BatchError)``). The exceptions keep the
built-in bases their callers catch (``LookupError``, ``ValueError``, ``RuntimeError``) next to their kind.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """A failure the core reports to its caller, with a message a person can act on.

    ``code`` is a stable, machine-readable reason for refusing an upload (the API counts refused uploads by it);
    None for the errors that are not about the upload itself.
    """

    code: ClassVar[str | None] = None


class BadInputError(ServiceError):
    """Input that cannot be read at all: empty, truncated or malformed data."""


class NotFoundError(ServiceError):
    """No such thing: a model, layer, method, transform or recording the caller named does not exist."""


class NotApplicableError(ServiceError):
    """Well-formed input the operation cannot apply to: a parameter out of range, a model of the wrong kind, an
    image with no digit in it."""


class TooLargeError(ServiceError):
    """More than a request may carry: too many pixels, images or evaluations."""


class UnsupportedError(ServiceError):
    """A format outside the accepted ones."""


class UnavailableError(ServiceError):
    """Something the work needs is missing or damaged (the statistics, a recording, a model file); retrying does
    not help until it is made again."""


class BusyError(ServiceError):
    """The service cannot take the work now (every slot taken, the request's time ran out); ``retry_after`` is the
    number of seconds after which a retry is worth it."""

    retry_after: ClassVar[int] = 1


KINDS: tuple[type[ServiceError], ...] = (
    BadInputError,
    NotFoundError,
    NotApplicableError,
    TooLargeError,
    UnsupportedError,
    UnavailableError,
    BusyError,
)


def kind_of(error: type[BaseException]) -> type[ServiceError] | None:
    """The kind of the exception class ``error``: the first kind in its method resolution order (None: not one of
    the core's errors)."""
    return next((base for base in error.__mro__ if base in KINDS), None)
