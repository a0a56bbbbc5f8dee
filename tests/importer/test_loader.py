"""The loader serves every intact imported folder and skips a broken one with its reason, never raising."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from service.contract import IMPORTED_DIR
from service.importer import main
from service.runtime.imported import load_imported
from tests.importer.builders import save, tiny_classifier


@pytest.fixture
def models(tmp_path: Path) -> Path:
    source = save(tiny_classifier(("N", 3, 16, 16)), tmp_path / "tiny.onnx")
    folder = tmp_path / "models"
    for name in ("first", "second"):
        assert main([str(source), "--name", name, "--models-dir", str(folder)]) == 0
    return folder


def test_every_imported_model_is_served_by_its_name(models):
    loaded, skipped = load_imported(models)
    assert sorted(loaded) == ["first", "second"] and skipped == {}


def test_a_changed_file_is_skipped_with_its_reason(models, caplog):
    exposed = models / IMPORTED_DIR / "second" / "exposed.onnx"
    exposed.write_bytes(exposed.read_bytes()[:-10])
    with caplog.at_level(logging.WARNING, "convlens.imported"):
        loaded, skipped = load_imported(models)
    assert sorted(loaded) == ["first"]
    assert "has SHA-256" in skipped["second"]
    assert [record.getMessage() for record in caplog.records] == [
        f"imported model second is not served: {skipped['second']}"
    ]


def test_a_malformed_manifest_is_skipped_with_its_reason(models):
    (models / IMPORTED_DIR / "first" / "manifest.json").write_text('{"format": 1}')
    loaded, skipped = load_imported(models)
    assert sorted(loaded) == ["second"] and "field" in skipped["first"]


def test_a_hidden_folder_left_by_an_interrupted_import_is_ignored(models):
    (models / IMPORTED_DIR / ".third-partial-x1y2").mkdir()
    loaded, skipped = load_imported(models)
    assert sorted(loaded) == ["first", "second"] and skipped == {}


def test_a_served_model_runs_a_batch_like_one_image_at_a_time(models):
    served = load_imported(models)[0]["first"]
    images = np.random.default_rng(0).standard_normal((9, 3, 16, 16), dtype=np.float32)
    name = served.manifest.probabilities
    together = served.run(images, [name])[name]
    alone = np.concatenate([served.run(image, [name])[name] for image in images])
    assert together.shape == (9, 5)
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(together.sum(1), 1.0, atol=1e-6)
