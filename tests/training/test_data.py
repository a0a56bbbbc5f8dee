"""The MNIST loader: real files load, every kind of bad file is named with what is wrong."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from training.data import FILES, IdxFile, MnistError, download, load_split, parse_idx, read_idx

SMALL_IMAGES = IdxFile("small-images-idx3-ubyte", 2051, 3, "", "")
SMALL_LABELS = IdxFile("small-labels-idx1-ubyte", 2049, 3, "", "")


def idx_images(pixels: np.ndarray, magic: int = 2051, count: int | None = None) -> bytes:
    n, rows, cols = pixels.shape
    return struct.pack(">IIII", magic, n if count is None else count, rows, cols) + pixels.astype(np.uint8).tobytes()


def test_real_test_split_loads_as_uint8_arrays_of_the_standard_shape(mnist_dir):
    images, labels = load_split(mnist_dir, "test")
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10_000,) and set(np.unique(labels)) == set(range(10))


def test_generated_images_round_trip_through_gzip_and_raw_files(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    raw, gz = tmp_path / "a", tmp_path / "a.gz"
    raw.write_bytes(idx_images(pixels))
    gz.write_bytes(gzip.compress(idx_images(pixels)))
    assert np.array_equal(read_idx(raw, SMALL_IMAGES), pixels)
    assert np.array_equal(read_idx(gz, SMALL_IMAGES), pixels)


def test_wrong_magic_number_is_reported_with_the_file_name():
    payload = idx_images(np.zeros((3, 28, 28)), magic=2049)
    with pytest.raises(MnistError, match=r"small-images.*magic number 2049, expected 2051"):
        parse_idx(payload, SMALL_IMAGES)


def test_truncated_file_is_reported_as_truncated():
    payload = idx_images(np.zeros((3, 28, 28)))[:-10]
    with pytest.raises(MnistError, match="truncated"):
        parse_idx(payload, SMALL_IMAGES)


def test_count_that_differs_from_the_standard_is_reported():
    payload = idx_images(np.zeros((2, 28, 28)))
    with pytest.raises(MnistError, match="header says 2 items, expected 3"):
        parse_idx(payload, SMALL_IMAGES)


def test_label_file_shorter_than_its_header_is_reported():
    with pytest.raises(MnistError, match="too short"):
        parse_idx(b"\x00\x00", SMALL_LABELS)


def test_checksum_mismatch_names_the_file_and_says_to_replace_it(mnist_dir, tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(mnist_dir / name, tmp_path / name)
    corrupt = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = bytearray(corrupt.read_bytes())
    data[-20] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(MnistError, match=r"t10k-labels-idx1-ubyte\.gz: SHA-256 .* replace it"):
        load_split(tmp_path, "test")


def test_missing_file_says_where_to_put_the_files(tmp_path):
    with pytest.raises(MnistError, match=rf"t10k-images-idx3-ubyte\(\.gz\) not found in {tmp_path}"):
        load_split(tmp_path, "test")


def test_no_directory_given_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    with pytest.raises(MnistError, match="--data-dir DIR or set MNIST_DIR"):
        load_split(None, "test")


def test_download_keeps_files_whose_checksums_match(mnist_dir, tmp_path):
    fetched = download(tmp_path / "data", mirror=mnist_dir.as_uri())
    assert sorted(p.name for p in fetched) == sorted(f"{spec.name}.gz" for spec in FILES.values())
    images, _ = load_split(tmp_path / "data", "test")
    assert images.shape == (10_000, 28, 28)


def test_download_rejects_a_file_whose_checksum_differs(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for spec in FILES.values():
        (mirror / f"{spec.name}.gz").write_bytes(gzip.compress(b"not mnist"))
    with pytest.raises(MnistError, match="does not match the published"):
        download(tmp_path / "data", mirror=mirror.as_uri())
    assert not list((tmp_path / "data").glob("*.gz"))


def test_download_failure_names_the_address(tmp_path):
    with pytest.raises(MnistError, match="could not download file://"):
        download(tmp_path / "data", mirror=(tmp_path / "nowhere").as_uri())
