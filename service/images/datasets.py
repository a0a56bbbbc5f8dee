"""Datasets on disk for the streamed analyses: an image folder (one subfolder per class, or flat) or ``.npy`` shards.

A dataset is a fixed, ordered list of items (sorted class folders, sorted files within each; ``.npy`` shards in
sorted file order), so an item's index names the same image on every machine and in every shard of a split. Items
are read one at a time as uint8 arrays ((H, W) grayscale or (H, W, 3) colour); an item that cannot be decoded is
``None`` to the caller, which skips and counts it. A class folder whose name is not one of the model's labels is
one ``DatasetError`` before any image is read. Pure numpy and Pillow, no web code.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from service.errors import NotApplicableError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".pgm", ".ppm", ".tif", ".tiff"})
LABELS_FILE = "labels.npy"
# A decoded image larger than this many pixels is counted as unreadable rather than decoded (a decompression bomb).
MAX_PIXELS = 64_000_000


class DatasetError(NotApplicableError, ValueError):
    """The dataset cannot be analysed as given; the message says what to change."""


@dataclass(frozen=True)
class Dataset:
    """An ordered dataset: ``count`` items, their label indices into the model's labels (None when unlabelled), and
    a fingerprint of its listing (names, sizes, shapes) that every shard of a split must share."""

    root: Path
    count: int
    labels: np.ndarray | None
    fingerprint: str
    files: tuple[Path, ...] = ()
    arrays: tuple[np.ndarray, ...] = ()
    starts: np.ndarray | None = None

    def read(self, index: int) -> np.ndarray | None:
        """Item ``index`` as uint8 (H, W) or (H, W, 3); None when it cannot be decoded."""
        if self.files:
            return _decode(self.files[index])
        shard = int(np.searchsorted(self.starts, index, side="right")) - 1
        return _read_row(self.arrays[shard], int(index - self.starts[shard]))

    def read_many(self, indices: range) -> list[np.ndarray | None]:
        """Items ``indices`` (a range with a positive step), as ``read`` gives them; the rows of a ``.npy`` shard
        that a range crosses are read in one call when the rows between them are fewer than those wanted."""
        if self.files or indices.step > 2 or not len(indices):
            return [self.read(index) for index in indices]
        items: list[np.ndarray | None] = []
        for shard, array in enumerate(self.arrays):
            first, end = int(self.starts[shard]), int(self.starts[shard]) + len(array)
            inside = indices[max(0, -(-(first - indices.start) // indices.step)) :]
            inside = inside[: len(range(inside.start, min(inside.stop, end), indices.step))]
            if len(inside):
                span = _read_rows(array, inside.start - first, inside[-1] + 1 - first)
                items.extend(span[:: indices.step])
        return items

    def label(self, index: int) -> int:
        """Item ``index``'s label index, -1 when the dataset is unlabelled."""
        return -1 if self.labels is None else int(self.labels[index])


def open_dataset(root: Path, class_names: Sequence[str]) -> Dataset:
    """The dataset under ``root``: ``.npy`` shards when it holds any, else an image folder (``ImageFolder`` layout
    with one subfolder per class named after one of ``class_names``, or a flat folder of images). DatasetError for
    a missing or empty folder, a class folder not among ``class_names``, or shards and labels that do not match."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder: give --images a folder of images or of .npy shards")
    if any(path.suffix == ".npy" for path in root.iterdir()):
        return _npy_dataset(root, class_names)
    return _image_folder(root, class_names)


def _image_folder(root: Path, class_names: Sequence[str]) -> Dataset:
    folders = sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))
    loose = _images_in(root)
    if folders and loose:
        raise DatasetError(
            f"{root} holds both class folders and {len(loose)} loose images: put every image in its class folder, "
            "or use a flat folder of images only (then no per-class results)"
        )
    if not folders:
        files, labels = loose, None
    else:
        unknown = [folder.name for folder in folders if folder.name not in class_names]
        if unknown:
            raise DatasetError(
                f"{root}: class folder(s) {', '.join(unknown)} are not labels of the model; its labels are "
                f"{', '.join(class_names)} (rename or remove those folders)"
            )
        per_class = [(class_names.index(folder.name), _images_in(folder)) for folder in folders]
        files = [path for _, paths in per_class for path in paths]
        labels = np.concatenate([np.full(len(paths), label, np.int64) for label, paths in per_class])
    if not files:
        raise DatasetError(f"{root} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    listing = hashlib.sha256()
    for path in files:
        listing.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\n".encode())
    return Dataset(root, len(files), labels, listing.hexdigest(), files=tuple(files))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.iterdir()
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def _npy_dataset(root: Path, class_names: Sequence[str]) -> Dataset:
    paths = sorted(path for path in root.glob("*.npy") if path.name != LABELS_FILE)
    if not paths:
        raise DatasetError(f"{root} holds only {LABELS_FILE}: add the image shards (*.npy, uint8 (N, H, W[, 3]))")
    arrays = []
    listing = hashlib.sha256()
    for path in paths:
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise DatasetError(f"{path} cannot be read as a .npy array: {exc}") from exc
        if array.dtype != np.uint8 or array.ndim not in (3, 4) or not array.flags.c_contiguous:
            raise DatasetError(
                f"{path} is {array.dtype} {array.shape}{'' if array.flags.c_contiguous else ' in Fortran order'}; "
                "shards must be uint8 (N, H, W) or (N, H, W, 3), in C order (as np.save writes them)"
            )
        arrays.append(array)
        listing.update(f"{path.name}\0{array.shape}\n".encode())
    starts = np.cumsum([0] + [len(array) for array in arrays[:-1]])
    count = int(sum(len(array) for array in arrays))
    labels = None
    labels_path = root / LABELS_FILE
    if labels_path.exists():
        labels = np.load(labels_path, allow_pickle=False)
        if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(
                f"{labels_path} is {labels.dtype} {labels.shape}; expected {count} integer labels, one per image of "
                "the shards in file-name order"
            )
        outside = labels[(labels < 0) | (labels >= len(class_names))]
        if len(outside):
            raise DatasetError(
                f"{labels_path} holds label {int(outside[0])}, outside the model's {len(class_names)} labels "
                f"(0-{len(class_names) - 1})"
            )
        labels = labels.astype(np.int64)
        listing.update(hashlib.sha256(labels.tobytes()).digest())
    return Dataset(root, count, labels, listing.hexdigest(), arrays=tuple(arrays), starts=starts)


def _read_row(array: np.memmap, row: int) -> np.ndarray:
    """Row ``row`` of a memory-mapped ``.npy`` shard (see ``_read_rows``)."""
    return _read_rows(array, row, row + 1)[0]


def _read_rows(array: np.memmap, start: int, stop: int) -> np.ndarray:
    """Rows ``start`` to ``stop`` of a memory-mapped ``.npy`` shard, read from its file rather than through the
    mapping: pages touched through a mapping count in the process's resident memory until the kernel drops them, so
    a pass over shards larger than the memory would seem to grow with them."""
    size = array.itemsize * math.prod(array.shape[1:])
    descriptor = os.open(array.filename, os.O_RDONLY)
    try:
        data = os.pread(descriptor, size * (stop - start), array.offset + start * size)
    finally:
        os.close(descriptor)
    return np.frombuffer(data, np.uint8).reshape(stop - start, *array.shape[1:])


def _decode(path: Path) -> np.ndarray | None:
    """The image file as uint8 grayscale or RGB; None when it is truncated, corrupt, not an image or too large."""
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_PIXELS:
                return None
            image.load()
            converted = image.convert("L" if image.mode in ("1", "L", "P", "I", "I;16", "LA") else "RGB")
            return np.asarray(converted, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
