"""``python -m training analyze --images DIR --model NAME`` for an imported model (the MNIST example imported into a
temporary models folder) over 500 real test images as an image folder of PNGs: no TensorFlow, the files beside the
model, and the memory bound refused before any image is read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from service.contract import STATISTICS_FILE, TOP_IMAGES_FILE
from service.importer import main
from tests.helpers import ROOT
from training.analyze import AnalysisError
from training.stream_analysis import analyze_images

EXAMPLE = ROOT / "examples" / "models" / "mnist-cnn.onnx"
NAME = "mnist-cnn"
IMAGES = 500


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("analyze-imported") / "models"
    assert main([str(EXAMPLE), "--name", NAME, "--preprocess", "mnist", "--models-dir", str(folder)]) == 0
    return folder


@pytest.fixture(scope="module")
def image_folder(mnist_test, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dataset") / "mnist-part"
    images, labels = mnist_test
    for index in range(IMAGES):
        target = root / str(labels[index])
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[index]).save(target / f"{index:05d}.png")
    return root


def test_an_imported_model_is_analysed_without_tensorflow_into_its_own_folder(models, image_folder):
    script = (
        "import sys; from training.__main__ import main; "
        f"code = main(['analyze', '--images', {str(image_folder)!r}, '--model', {NAME!r}, "
        f"'--model-dir', {str(models)!r}, '--no-plots']); "
        "print('tensorflow' in sys.modules, code)"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.stdout.strip().splitlines()[-1] == "False 0", done.stderr[-2000:]
    folder = models / "imported" / NAME
    assert (folder / STATISTICS_FILE).is_file() and (folder / TOP_IMAGES_FILE).is_file()


def test_layers_chooses_the_analysed_layers(models, image_folder, tmp_path):
    analyze_images(
        models, NAME, image_folder, tmp_path, plots=False, progress=False, layers=("features.3.MaxPool", "logits")
    )
    written = (tmp_path / STATISTICS_FILE).read_text()
    assert '"features.3.MaxPool"' in written and '"logits"' in written and '"features.0.Conv"' not in written


def test_a_run_above_the_memory_bound_is_refused_naming_the_remedies(models, image_folder, tmp_path):
    with pytest.raises(AnalysisError, match="--layers"):
        analyze_images(models, NAME, image_folder, tmp_path, progress=False, max_state_bytes=1 << 20)
    assert not any(tmp_path.iterdir())
