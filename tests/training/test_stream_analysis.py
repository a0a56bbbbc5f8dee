"""The streamed dataset analysis (``python -m training analyze --images``, ``merge``) on real MNIST test images
written out as an image folder of PNGs and as .npy shards, with the shipped classifier through the registry."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api.app import create_app
from service.api.settings import Settings
from service.contract import PLOTS_DIR, STATISTICS_FILE, TOP_IMAGES_FILE, UNLABELLED_STATISTICS_FILE
from service.featuremaps.norms import feature_map_norms
from service.runtime.registry import load_registry
from tests.helpers import MODELS, ROOT
from training.stream_analysis import analyze_images, merge_parts

IMAGES = 3000
BATCH = 128


@pytest.fixture(scope="module")
def folder(mnist_test, tmp_path_factory) -> Path:
    """The first IMAGES test images as PNGs, one folder per digit."""
    root = tmp_path_factory.mktemp("dataset") / "mnist-part"
    images, labels = mnist_test
    for index in range(IMAGES):
        target = root / str(labels[index])
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(target / f"{index:05d}.png")
    return root


def folder_order(root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The folder's images and labels in the dataset's order (sorted class folders, sorted files)."""
    paths = sorted(root.glob("*/*.png"), key=lambda path: (path.parent.name, path.name))
    return np.stack([np.asarray(Image.open(path)) for path in paths]), np.array([int(p.parent.name) for p in paths])


@pytest.fixture(scope="module")
def whole(folder, tmp_path_factory) -> Path:
    """One run over the whole folder."""
    out = tmp_path_factory.mktemp("whole")
    analyze_images(MODELS, "classifier", folder, out, batch_size=BATCH, plots=False, progress=False)
    return out


def outputs(out: Path) -> tuple[bytes, bytes]:
    return (out / STATISTICS_FILE).read_bytes(), (out / TOP_IMAGES_FILE).read_bytes()


def run_command(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_the_shards_of_a_split_merged_in_any_order_equal_one_run_byte_for_byte(folder, whole, tmp_path, shards):
    parts = [
        analyze_images(MODELS, "classifier", folder, tmp_path / "parts", (i, shards), BATCH, False, False)
        for i in range(shards)
    ]
    if shards == 1:
        assert outputs(tmp_path / "parts") == outputs(whole)
        return
    random.Random(shards).shuffle(parts)
    merge_parts(parts, MODELS, tmp_path / "merged", folder.name, plots=False)
    assert outputs(tmp_path / "merged") == outputs(whole)


def test_npy_shards_with_a_labels_file_give_the_statistics_of_the_same_images_in_a_folder(folder, whole, tmp_path):
    images, labels = folder_order(folder)
    shards = tmp_path / "mnist-part"
    shards.mkdir()
    np.save(shards / "images-0.npy", images[:1000])
    np.save(shards / "images-1.npy", images[1000:])
    np.save(shards / "labels.npy", labels)
    analyze_images(MODELS, "classifier", shards, tmp_path / "out", batch_size=BATCH, plots=False, progress=False)
    streamed = json.loads((tmp_path / "out" / STATISTICS_FILE).read_text())
    expected = json.loads((whole / STATISTICS_FILE).read_text())
    assert streamed.pop("data_sha256") != expected.pop("data_sha256"), "each dataset has its own listing"
    assert {**streamed, "top_images": None} == {**expected, "top_images": None}


def test_the_top9_of_a_filter_equal_a_brute_force_ranking_over_the_dataset(folder, whole):
    images, labels = folder_order(folder)
    model = load_registry(MODELS, variants=False).models["classifier"]
    norms = [feature_map_norms(model.run(image[None] / np.float32(255), ["conv2"])["conv2"])[0, 7] for image in images]
    ranked = sorted(range(len(images)), key=lambda index: (-norms[index], index))[:9]
    top = json.loads((whole / STATISTICS_FILE).read_text())["layers"]["conv2"]["top_images"]
    assert top["indices"][7] == ranked
    assert top["labels"][7] == labels[ranked].tolist()
    with np.load(whole / TOP_IMAGES_FILE) as kept:
        pictures = dict(zip(kept["indices"].tolist(), kept["images"]))
    assert all(np.array_equal(pictures[index], images[index]) for index in ranked)


def test_a_corrupt_image_is_skipped_and_counted(folder, tmp_path):
    small = tmp_path / "small"
    for digit in range(10):
        shutil.copytree(folder / str(digit), small / str(digit), ignore=lambda _, names: sorted(names)[20:])
    (small / "3" / "broken.png").write_bytes(
        (folder / "3" / sorted(p.name for p in (folder / "3").iterdir())[0]).read_bytes()[:60]
    )
    done = run_command("analyze", "--images", str(small), "--out-dir", str(tmp_path / "out"), "--no-plots")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "200 images analysed, 1 skipped (unreadable)" in done.stderr
    assert json.loads((tmp_path / "out" / STATISTICS_FILE).read_text())["images"] == 200


def test_a_class_folder_unknown_to_the_labels_is_one_clear_error_before_any_work(tmp_path, folder):
    shutil.copytree(folder / "1", tmp_path / "data" / "1")
    shutil.copytree(folder / "2", tmp_path / "data" / "cat")
    done = run_command("analyze", "--images", str(tmp_path / "data"), "--out-dir", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'data'}: class folder(s) cat are not labels of the model; its labels are "
        "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 (rename or remove those folders)"
    ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_flat_folder_gives_the_layer_results_without_per_class_ones(tmp_path, folder, whole):
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(folder.glob("*/*.png"))[:300]:
        shutil.copy(path, flat / f"{path.parent.name}-{path.name}")
    analyze_images(MODELS, "classifier", flat, tmp_path / "out", batch_size=BATCH, plots=False, progress=False)
    written = json.loads((tmp_path / "out" / UNLABELLED_STATISTICS_FILE).read_text())
    assert written["images"] == 300 and not (tmp_path / "out" / STATISTICS_FILE).exists()
    conv2 = written["layers"]["conv2"]
    assert set(conv2) == {"filters", "dataset_threshold", "norms", "top_images"}
    assert list(conv2["norms"]) == ["all"] and set(conv2["top_images"]["labels"][0]) == {-1}


def test_a_run_killed_with_sigkill_resumes_from_its_checkpoint_to_the_uninterrupted_result(folder, tmp_path):
    args = ["analyze", "--images", str(folder), "--out-dir", str(tmp_path / "out"), "--no-plots", "--batch-size", "16"]
    uninterrupted = tmp_path / "uninterrupted"
    assert run_command(*args[:-5], "--out-dir", str(uninterrupted), "--no-plots", "--batch-size", "16").returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "training", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = tmp_path / "out" / "part-0-of-1.npz"
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists() and time.monotonic() < deadline:
            assert process.poll() is None, "finished before it could be killed"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not (tmp_path / "out" / STATISTICS_FILE).exists(), "killed mid-run"
    resumed = run_command(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first_count = int(re.search(r"(\d+)/3000", resumed.stderr).group(1))
    assert first_count > 0, "the resumed run starts from its checkpoint"
    assert outputs(tmp_path / "out") == outputs(uninterrupted)
    assert not checkpoint.exists()


def test_the_streamed_path_imports_no_tensorflow(folder, tmp_path):
    script = (
        "import sys; from training.__main__ import main; "
        f"code = main(['analyze', '--images', {str(folder / '7')!r}, '--out-dir', {str(tmp_path)!r}, '--no-plots']); "
        "print('tensorflow' in sys.modules, code)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "False 0", done.stderr[-2000:]


def test_the_service_serves_the_streamed_statistics_and_top_images(folder, tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    for name in ("manifest.json", "classifier.onnx", "autoencoder.onnx"):
        (models / name).symlink_to(MODELS / name)
    analyze_images(MODELS, "classifier", folder, models, batch_size=BATCH, plots=True, progress=False)
    images, _ = folder_order(folder)
    with TestClient(create_app(Settings(model_dir=models))) as client:
        summary = client.get("/v1/statistics")
        assert summary.status_code == 200 and summary.json()["images"] == IMAGES
        rows = client.get("/v1/filters/conv2/7/top-images").json()["images"]
        assert [row["rank"] for row in rows] == list(range(1, 10))
        top = json.loads((models / STATISTICS_FILE).read_text())["layers"]["conv2"]["top_images"]
        assert [row["index"] for row in rows] == top["indices"][7]
        plot = client.get("/v1/statistics/norms/conv2", params={"format": "png"})
        assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert (models / PLOTS_DIR).is_dir()
