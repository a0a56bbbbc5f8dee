"""Request body -> image bytes: multipart field ``image`` or a raw body.

The body arrives already received in full within the size limit (``admission_control`` counts it as it streams
and answers 413), so here it is only taken apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from service.api.errors import BadRequest, Unprocessable, UnsupportedMediaType
from service.client_text import excerpt

FIELD = "image"
RAW_TYPES = ("image/", "application/octet-stream")
NPY_TYPES = ("application/x-npy", "application/octet-stream")
# Multipart bodies up to this size are parsed on the event loop; larger ones in a worker thread.
INLINE_PARSE_BYTES = 256 * 1024
# Parts a single-image request may hold (the image and a few form fields).
MAX_SINGLE_PARTS = 16

IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "description": "The image: multipart/form-data with the field `image`, or the raw file as the body "
        "with an image content type. PNG, JPEG, GIF, BMP or WebP; any size within the limits.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "string", "format": "binary"}},
                },
            },
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

BATCH_BODY = {
    "requestBody": {
        "required": True,
        "description": "Many images: multipart/form-data with the field `image` repeated once per image (any "
        "format and size, each preprocessed like a single upload), or a NumPy .npy array of shape "
        "(N, 28, 28) (or N x 28 x 28 x 1), uint8 0-255 or float32 in [0, 1], light digit on dark, "
        "sent as application/x-npy or application/octet-stream.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {FIELD: {"type": "array", "items": {"type": "string", "format": "binary"}}},
                },
            },
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@dataclass
class Part:
    """One part of a multipart body: its field name, file name (None for a plain field) and bytes."""

    name: str
    filename: str | None
    data: bytes


def parse_multipart(body: bytes, content_type: str, max_parts: int) -> list[Part]:
    """Every part of a multipart/form-data ``body``, in memory (uploads are already bounded by the size limit, so
    nothing is spooled to disk); BadRequest for a malformed body or more than ``max_parts`` parts."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart/form-data without a boundary: let the client library build the body")
    parts: list[Part] = []
    headers: dict[bytes, bytes] = {}
    field, value, data = bytearray(), bytearray(), bytearray()

    def on_part_begin() -> None:
        if len(parts) >= max_parts:
            raise BadRequest(f"the multipart body has more than {max_parts} parts")
        headers.clear()
        data.clear()

    def on_header_end() -> None:
        headers[bytes(field).lower()] = bytes(value)
        field.clear()
        value.clear()

    def on_part_end() -> None:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        filename = disposition.get(b"filename")
        parts.append(
            Part(disposition.get(b"name", b"").decode("latin-1"), filename and filename.decode("latin-1"), bytes(data))
        )

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": lambda chunk, start, end: field.extend(chunk[start:end]),
            "on_header_value": lambda chunk, start, end: value.extend(chunk[start:end]),
            "on_header_end": on_header_end,
            "on_part_data": lambda chunk, start, end: data.extend(chunk[start:end]),
            "on_part_end": on_part_end,
        },
    )
    try:
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise BadRequest(f"the multipart body cannot be parsed: {exc}") from None
    return parts


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").lower()


async def _form_files(request: Request, body: bytes, max_parts: int) -> list[bytes]:
    """Every file sent in the multipart field ``image``; 422 naming the fields sent when there is none. Large
    bodies are parsed in a worker thread: parsing is Python code whose cost grows with the body."""
    content_type = request.headers.get("content-type", "")
    if len(body) <= INLINE_PARSE_BYTES:
        parts = parse_multipart(body, content_type, max_parts)
    else:
        parts = await run_in_threadpool(parse_multipart, body, content_type, max_parts)
    files = [part.data for part in parts if part.name == FIELD and part.filename is not None]
    if not files:
        fields = ", ".join(sorted({part.name for part in parts})) or "none"
        raise Unprocessable(
            f"multipart form has no file field '{FIELD}' (fields sent: {fields})", rejected_upload="missing_field"
        )
    return files


async def batch_upload(request: Request, max_parts: int) -> list[bytes] | bytes:
    """A batch: the files of every multipart ``image`` field, or a raw .npy body (returned as bytes)."""
    content_type = _content_type(request)
    if content_type.startswith("multipart/form-data"):
        return await _form_files(request, await request.body(), max_parts)
    if not content_type.startswith(NPY_TYPES):
        sent = excerpt(content_type) if content_type else "(none)"
        raise UnsupportedMediaType(
            f"content type {sent} is not accepted for a batch: send multipart/form-data with "
            f"repeated '{FIELD}' fields, or a .npy array as application/x-npy",
            rejected_upload="content_type",
        )
    return await request.body()


async def image_bytes(request: Request) -> bytes:
    """The uploaded image's bytes from a multipart form (field ``image``) or a raw image body."""
    content_type = _content_type(request)
    if not content_type.startswith("multipart/form-data") and not content_type.startswith(RAW_TYPES):
        sent = excerpt(content_type) if content_type else "(none)"
        raise UnsupportedMediaType(
            f"content type {sent} is not accepted: send multipart/form-data with the field "
            f"'{FIELD}', or the raw file with an image content type such as image/png",
            rejected_upload="content_type",
        )
    body = await request.body()
    if not content_type.startswith("multipart/form-data"):
        return body
    files = await _form_files(request, body, MAX_SINGLE_PARTS)
    if len(files) > 1:
        raise Unprocessable(
            f"{len(files)} files in the field '{FIELD}': this endpoint takes one image; send several to "
            "/v1/classify/batch",
            rejected_upload="several_files",
        )
    return files[0]
