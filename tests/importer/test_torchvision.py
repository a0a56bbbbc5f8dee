"""torchvision classifiers with random weights, exported by torch.onnx.export and imported: the import succeeds,
the exposed copy gives the file's outputs, its probabilities are PyTorch's own and every exposed layer is the
PyTorch intermediate tensor it names (``tests.importer.frameworks.framework_name`` says how a layer is mapped to
its module or function)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision

from service.contract import ImportedModel
from service.importer import ImportOptions, import_model
from service.runtime.imported import load_imported
from tests.importer.frameworks import export_torch, exposed_against_framework, intermediate_outputs

TOLERANCE = 1e-4
IMAGES = 2
# (architecture, input side): every model at 64 x 64 and ResNet-18 also at 224 x 224.
MODELS = [
    ("resnet18", 64),
    ("resnet18", 224),
    ("mobilenet_v3_small", 64),
    ("squeezenet1_1", 64),
    ("efficientnet_b0", 64),
    ("densenet121", 64),
]


class Imported:
    """One exported and imported model with what the checks compare."""

    def __init__(self, arch: str, size: int, folder: Path) -> None:
        torch.manual_seed(0)
        self.model = getattr(torchvision.models, arch)(weights=None).eval()
        self.onnx_file = export_torch(self.model, folder / f"{arch}.onnx", size)
        self.manifest: ImportedModel = import_model(
            self.onnx_file,
            ImportOptions(
                name=f"{arch}-{size}",
                models_dir=folder / "models",
                mean=(0.485, 0.456, 0.406),
                std=(0.229, 0.224, 0.225),
            ),
        )
        self.images = np.random.default_rng(1).standard_normal((IMAGES, 3, size, size), dtype=np.float32)
        loaded, skipped = load_imported(folder / "models")
        assert skipped == {}
        self.served = loaded[self.manifest.name]
        names = [layer.name for layer in self.manifest.layers]
        self.exposed = self.served.run(self.images, names)
        self.framework = intermediate_outputs(self.model, self.images)
        with torch.no_grad():
            self.logits = self.model(torch.from_numpy(self.images)).numpy()


@pytest.fixture(scope="module", params=MODELS, ids=[f"{arch}-{size}" for arch, size in MODELS])
def imported(request, tmp_path_factory) -> Imported:
    arch, size = request.param
    return Imported(arch, size, tmp_path_factory.mktemp(f"{arch}-{size}"))


def test_the_exposed_copy_gives_the_files_outputs(imported):
    original = ort.InferenceSession(str(imported.onnx_file), providers=["CPUExecutionProvider"])
    (expected,) = original.run(None, {"input": imported.images})
    assert np.abs(imported.exposed[imported.manifest.logits] - expected).max() <= TOLERANCE


def test_the_probabilities_are_pytorchs_own(imported):
    expected = torch.softmax(torch.from_numpy(imported.logits), dim=1).numpy()
    assert np.abs(imported.exposed[imported.manifest.probabilities] - expected).max() <= TOLERANCE


def test_the_logits_are_pytorchs_own(imported):
    assert np.abs(imported.exposed[imported.manifest.logits] - imported.logits).max() <= TOLERANCE


def test_every_exposed_layer_is_the_pytorch_tensor_it_names(imported):
    deltas = exposed_against_framework(imported.manifest, imported.exposed, imported.framework, imported.model)
    assert len(deltas) == len(imported.manifest.layers) - 2
    worst = max(deltas, key=deltas.get)
    assert deltas[worst] <= TOLERANCE, f"{worst} differs by {deltas[worst]:.3g}"


def test_the_layers_are_named_uniquely_and_readably(imported):
    names = [layer.name for layer in imported.manifest.layers]
    assert len(set(names)) == len(names)
    assert all(name.replace(".", "").replace("_", "").replace("-", "").isalnum() for name in names)
