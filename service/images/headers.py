"""A bounded walk over an uploaded image's header: its format and declared size, at a cost fixed in advance.

Pillow walks JPEG markers, PNG chunks and GIF extension blocks in Python, as many as the file holds: a 10 MB
JPEG made of millions of empty markers keeps it busy for seconds before it decodes a pixel. This walk reads the
same structures with a budget of ``MAX_SEGMENTS`` markers, chunks or blocks and refuses a file that needs more,
so what it costs is bounded whatever the upload is, and cheap enough to run on the event loop. Files that pass
are handed to Pillow, which then walks at most that many segments too.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from service.errors import BadInputError

MAX_SEGMENTS = 4096

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}
JPEG_SOS = 0xDA
GIF_EXTENSION, GIF_IMAGE, GIF_TRAILER = 0x21, 0x2C, 0x3B


class TooManySegments(BadInputError, ValueError):
    """The file holds more markers, chunks or blocks than any real image of its kind needs."""

    code = "too_many_segments"


@dataclass(frozen=True)
class Header:
    """What the header declares: the format (Pillow's name) and the size in pixels."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes, budget: int = MAX_SEGMENTS) -> Header | None:
    """The format and declared size of ``data``; None when it is no PNG, JPEG, GIF, BMP or WebP this walk can
    read (Pillow then decides, and refuses it); TooManySegments past ``budget`` segments."""
    try:
        if data.startswith(PNG_SIGNATURE):
            return _png(data, budget)
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data, budget)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(data, budget)
        if data.startswith(b"BM"):
            return _bmp(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):
        return None
    return None


def _png(data: bytes, budget: int) -> Header | None:
    """IHDR (the first chunk) gives the size; every chunk up to IEND counts against the budget."""
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    position, chunks = 8, 0
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunks += 1
        if chunks > budget:
            raise TooManySegments(f"the PNG holds more than {budget:,} chunks; real images hold a few dozen")
        if kind == b"IEND":
            break
        position += 12 + length
    return Header("PNG", width, height)


def _jpeg(data: bytes, budget: int) -> Header | None:
    """Markers up to the start of scan (where Pillow hands over to libjpeg); a frame header gives the size."""
    position, markers, size = 2, 0, None
    while position < len(data) - 1:
        if data[position] != 0xFF:
            return None
        while position < len(data) - 1 and data[position + 1] == 0xFF:  # fill bytes before a marker
            position += 1
        marker = data[position + 1]
        markers += 1
        if markers > budget:
            raise TooManySegments(f"the JPEG holds more than {budget:,} markers before its image data")
        if marker in JPEG_STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in JPEG_SOF:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            size = (width, height)
        if marker == JPEG_SOS:
            break
        position += 2 + length
    return Header("JPEG", *size) if size else None


def _gif(data: bytes, budget: int) -> Header | None:
    """The logical screen gives the size; blocks and sub-blocks up to the first frame count against the budget."""
    width, height, flags = struct.unpack("<HHB", data[6:11])
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    steps = 0
    while position < len(data):
        steps += 1
        if steps > budget:
            raise TooManySegments(f"the GIF holds more than {budget:,} blocks before its first frame")
        kind = data[position]
        if kind != GIF_EXTENSION:
            break  # the first frame (GIF_IMAGE), the trailer, or a broken file: Pillow takes it from here
        position += 2
        while position < len(data) and data[position]:
            steps += 1
            if steps > budget:
                raise TooManySegments(f"the GIF holds more than {budget:,} blocks before its first frame")
            position += 1 + data[position]
        position += 1
    return Header("GIF", width, height)


def _bmp(data: bytes) -> Header | None:
    (dib_size,) = struct.unpack("<I", data[14:18])
    if dib_size == 12:
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return Header("BMP", abs(width), abs(height))


def _webp(data: bytes) -> Header | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return Header("WEBP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return Header("WEBP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return Header("WEBP", width, height)
    return None
