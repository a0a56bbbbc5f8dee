"""Request body -> image bytes: multipart field ``image`` or a raw body, counted against the size limit."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile

from service.api.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType

FIELD = "image"
RAW_TYPES = ("image/", "application/octet-stream")
NPY_TYPES = ("application/x-npy", "application/octet-stream")

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


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as more than ``limit`` bytes arrive (whatever Content-Length says)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"upload of {int(declared)} bytes is over the limit of {limit} bytes", rejected_upload="too_many_bytes"
        )
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"upload is over the limit of {limit} bytes", rejected_upload="too_many_bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _replay(body: bytes):
    """An ASGI receive callable that hands over an already-read body."""

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").lower()


async def _form_files(request: Request, body: bytes) -> list[bytes]:
    """Every file sent in the multipart field ``image``; 422 naming the fields sent when there is none."""
    form = await Request(request.scope, _replay(body)).form()
    try:
        uploads = [item for item in form.getlist(FIELD) if isinstance(item, UploadFile)]
        if not uploads:
            fields = ", ".join(sorted(form.keys())) or "none"
            raise Unprocessable(
                f"multipart form has no file field '{FIELD}' (fields sent: {fields})", rejected_upload="missing_field"
            )
        return [await upload.read() for upload in uploads]
    finally:
        await form.close()


async def batch_upload(request: Request, limit: int) -> list[bytes] | bytes:
    """A batch: the files of every multipart ``image`` field, or a raw .npy body (returned as bytes)."""
    content_type = _content_type(request)
    if content_type.startswith("multipart/form-data"):
        return await _form_files(request, await read_body(request, limit))
    if not content_type.startswith(NPY_TYPES):
        raise UnsupportedMediaType(
            f"content type {content_type or '(none)'!r} is not accepted for a batch: send multipart/form-data with "
            f"repeated '{FIELD}' fields, or a .npy array as application/x-npy",
            rejected_upload="content_type",
        )
    return await read_body(request, limit)


async def image_bytes(request: Request, limit: int) -> bytes:
    """The uploaded image's bytes from a multipart form (field ``image``) or a raw image body."""
    content_type = _content_type(request)
    if not content_type.startswith("multipart/form-data") and not content_type.startswith(RAW_TYPES):
        raise UnsupportedMediaType(
            f"content type {content_type or '(none)'!r} is not accepted: send multipart/form-data with the field "
            f"'{FIELD}', or the raw file with an image content type such as image/png",
            rejected_upload="content_type",
        )
    body = await read_body(request, limit)
    if not content_type.startswith("multipart/form-data"):
        return body
    return (await _form_files(request, body))[0]
