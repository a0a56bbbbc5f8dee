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
from service.images.decoding import decode_picture
from service.images.preprocessing import picture_input
from service.importer import ImportOptions, import_model
from service.runtime.imported import load_imported
from tests.helpers import encode
from tests.importer.frameworks import export_torch, exposed_against_framework, framework_name, intermediate_outputs
from tests.importer.over_http import activations, classify_batch, infer_binary, serving

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
        self.models_dir = folder / "models"
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


def test_over_http_a_photo_its_layers_and_v2_answer_as_pytorch(imported):
    name, manifest = imported.manifest.name, imported.manifest
    photo = encode(np.random.default_rng(2).integers(0, 256, (50, 70, 3), dtype=np.uint8))
    tensor = picture_input(decode_picture(photo, max_pixels=10**6), manifest.input, manifest.preprocessing)
    layer = manifest.layers[0].name
    with torch.no_grad():
        photo_expected = torch.softmax(imported.model(torch.from_numpy(tensor)), dim=1).numpy()[0]
    layer_expected = intermediate_outputs(imported.model, tensor)[framework_name(layer, imported.model)][0]
    expected = torch.softmax(torch.from_numpy(imported.logits), dim=1).numpy()
    with serving(imported.models_dir) as client:
        answer = client.post(
            "/v1/classify", params={"model": name}, content=photo, headers={"content-type": "image/png"}
        )
        shown = activations(client, name, layer, photo)
        batch = classify_batch(client, name, imported.images)
        v2 = infer_binary(client, name, manifest.input.name, imported.images, [manifest.probabilities])
    assert np.abs(np.array(answer.json()["probabilities"]) - photo_expected).max() <= TOLERANCE
    assert np.abs(shown - layer_expected).max() <= TOLERANCE
    assert np.abs(batch - expected).max() <= TOLERANCE
    assert np.abs(v2[manifest.probabilities] - expected).max() <= TOLERANCE
