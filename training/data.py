"""MNIST from the four standard IDX files: verified, decoded, returned as uint8 arrays.

The files are read from a directory (``--data-dir`` or ``MNIST_DIR``), gzipped or raw. Every file is
checked against the published SHA-256 sums and its IDX header (magic number, count, shape), so a
wrong, truncated or corrupt file fails with a message naming the file instead of a numpy traceback.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import struct
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_MIRROR = "https://storage.googleapis.com/cvdf-datasets/mnist/"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class IdxFile:
    """One of the four standard files and what it must contain."""

    name: str
    magic: int
    count: int
    gz_sha256: str
    raw_sha256: str


FILES: dict[tuple[str, str], IdxFile] = {
    ("train", "images"): IdxFile(
        "train-images-idx3-ubyte",
        2051,
        60_000,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    ("train", "labels"): IdxFile(
        "train-labels-idx1-ubyte",
        2049,
        60_000,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    ("test", "images"): IdxFile(
        "t10k-images-idx3-ubyte",
        2051,
        10_000,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    ("test", "labels"): IdxFile(
        "t10k-labels-idx1-ubyte",
        2049,
        10_000,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}


class MnistError(Exception):
    """A missing, corrupt or unexpected MNIST file; the message says which and what to do."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """The directory given, else ``$MNIST_DIR``, as an absolute path (a relative one is taken from the current
    directory, as the Makefile's ``../shared/mnist`` is); an error saying how to point at the data otherwise."""
    chosen = data_dir or os.environ.get("MNIST_DIR")
    if not chosen:
        raise MnistError(
            "no MNIST directory given: pass --data-dir DIR or set MNIST_DIR to the folder holding "
            "train-images-idx3-ubyte.gz and the three other standard IDX files"
        )
    return Path(chosen).expanduser().resolve()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _locate(data_dir: Path, spec: IdxFile) -> tuple[Path, str]:
    for path, expected in ((data_dir / f"{spec.name}.gz", spec.gz_sha256), (data_dir / spec.name, spec.raw_sha256)):
        if path.is_file():
            return path, expected
    raise MnistError(
        f"{spec.name}(.gz) not found in {data_dir}: put the four standard MNIST IDX files there "
        "(or run `python -m training download --data-dir DIR` where the internet is reachable)"
    )


def parse_idx(payload: bytes, spec: IdxFile, origin: str = "") -> np.ndarray:
    """Decode an IDX payload after checking its magic number, count and shape against ``spec``."""
    where = origin or spec.name
    ndim = spec.magic & 0xFF
    header_len = 4 + 4 * ndim
    if len(payload) < header_len:
        raise MnistError(f"{where}: only {len(payload)} bytes, too short for an IDX header")
    magic = struct.unpack(">I", payload[:4])[0]
    if magic != spec.magic:
        raise MnistError(f"{where}: magic number {magic}, expected {spec.magic} — not an MNIST {spec.name} file")
    dims = struct.unpack(f">{ndim}I", payload[4:header_len])
    if dims[0] != spec.count:
        raise MnistError(f"{where}: header says {dims[0]} items, expected {spec.count}")
    if ndim == 3 and dims[1:] != (28, 28):
        raise MnistError(f"{where}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected_len = header_len + int(np.prod(dims))
    if len(payload) != expected_len:
        raise MnistError(f"{where}: {len(payload)} bytes, expected {expected_len} (truncated or padded file)")
    return np.frombuffer(payload, dtype=np.uint8, offset=header_len).reshape(dims)


def read_idx(path: Path, spec: IdxFile, expected_sha256: str | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or raw), verifying its checksum when one is given."""
    if expected_sha256 is not None:
        actual = sha256_of(path)
        if actual != expected_sha256:
            raise MnistError(
                f"{path}: SHA-256 {actual} does not match the published {expected_sha256}; "
                "the file is corrupt or not the standard MNIST file — replace it"
            )
    try:
        payload = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise MnistError(f"{path}: cannot be decompressed ({exc}); replace the file") from exc
    return parse_idx(payload, spec, str(path))


def load_split(
    data_dir: str | os.PathLike[str] | None, split: str = "train", verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) and labels (N,) of one split, both uint8."""
    if split not in SPLITS:
        raise MnistError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    directory = resolve_data_dir(data_dir)
    arrays = []
    for kind in ("images", "labels"):
        spec = FILES[(split, kind)]
        path, expected = _locate(directory, spec)
        arrays.append(read_idx(path, spec, expected if verify else None))
    images, labels = arrays
    if labels.max() > 9:
        raise MnistError(f"{split} labels hold {int(labels.max())}; MNIST labels are 0-9")
    return images, labels


def dataset_checksums() -> dict[str, str]:
    """The published SHA-256 of each gzipped file, for recording in manifests."""
    return {f"{spec.name}.gz": spec.gz_sha256 for spec in FILES.values()}


def download(data_dir: str | os.PathLike[str], mirror: str = DEFAULT_MIRROR) -> list[Path]:
    """Fetch the four gzipped files from ``mirror`` into ``data_dir``, keeping each only if its checksum matches."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    fetched = []
    for spec in FILES.values():
        target = directory / f"{spec.name}.gz"
        if target.is_file() and sha256_of(target) == spec.gz_sha256:
            fetched.append(target)
            continue
        partial = target.with_suffix(".gz.part")
        url = mirror.rstrip("/") + f"/{spec.name}.gz"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, partial.open("wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise MnistError(f"could not download {url}: {exc}") from exc
        actual = sha256_of(partial)
        if actual != spec.gz_sha256:
            partial.unlink()
            raise MnistError(f"{url}: SHA-256 {actual} does not match the published {spec.gz_sha256}; not kept")
        partial.replace(target)
        fetched.append(target)
    return fetched
