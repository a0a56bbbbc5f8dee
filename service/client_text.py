"""Quoting what a client sent inside an error message: a bounded, escaped excerpt, never a Python object's repr.

An error message that echoes input verbatim can grow with the input, and one that formats an arbitrary object
with ``repr`` can print heap addresses (``<ast.BinOp object at 0x7f...>``), which help defeat address-space
randomisation. Messages quote client input through ``excerpt`` only.
"""

from __future__ import annotations

EXCERPT_CHARS = 40
PRINTABLE = frozenset(chr(code) for code in range(0x20, 0x7F)) - {"\\"}


def excerpt(value: str | bytes | int | float | bool | None, limit: int = EXCERPT_CHARS) -> str:
    """``value`` quoted as ``'...'``: at most ``limit`` characters of it, anything outside printable ASCII (and
    quotes, backslashes) escaped as ``\\xNN``/``\\uNNNN``, and ``…`` marking a cut. Numbers, booleans and None are
    quoted as they read in JSON; any other type is named, never formatted."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int) and abs(value) >= 10**limit:  # str() of a huge int costs time, and may raise
        return f"(an integer of {value.bit_length()} bits)"
    if isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, bytes):
        text = value[: limit + 1].decode("latin-1")
    elif isinstance(value, str):
        text = value[: limit + 1]
    else:
        return f"(a value of type {type(value).__name__})"
    cut = len(text) > limit
    escaped = "".join(char if char in PRINTABLE else _escape(char) for char in text[:limit])
    return f"'{escaped}{'…' if cut else ''}'"


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
