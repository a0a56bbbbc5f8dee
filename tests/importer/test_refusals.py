"""Each file the importer cannot serve is refused by the real command line with exit code 2, one line saying what
to do, and nothing written under the models folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from onnx import TensorProto

from service.importer import EXIT_REFUSED, MAX_BYTES_VARIABLE, main
from tests.importer.builders import save, tiny_classifier, with_external_weights


def refusal(capsys: pytest.CaptureFixture[str], models: Path, model: Path, *options: str) -> str:
    """Run the importer on ``model``; the one line it printed, after checking exit code 2 and an empty folder."""
    code = main([str(model), "--name", "mine", "--models-dir", str(models), *options])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_REFUSED
    assert len(lines) == 1 and lines[0].startswith("convlens-import: refused: ")
    imported = models / "imported"
    assert not imported.exists() or list(imported.iterdir()) == []
    return lines[0]


@pytest.fixture
def models(tmp_path: Path) -> Path:
    return tmp_path / "models"


def test_a_file_that_is_not_onnx_is_refused(tmp_path, models, capsys):
    path = tmp_path / "notes.onnx"
    path.write_text("these are my notes, not a network\n")
    assert "not an ONNX model or is truncated" in refusal(capsys, models, path)


def test_a_truncated_file_is_refused(tmp_path, models, capsys):
    whole = tiny_classifier().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(whole[: len(whole) // 2])
    assert "truncated" in refusal(capsys, models, path)


def test_an_input_that_is_not_an_image_is_refused(tmp_path, models, capsys):
    model = tiny_classifier(("N", 3, 16, 16))
    model.graph.input[0].type.tensor_type.shape.dim.pop()
    path = save(model, tmp_path / "flat.onnx")
    assert "4-D float image input" in refusal(capsys, models, path)


def test_a_model_with_two_inputs_is_refused(tmp_path, models, capsys):
    model = tiny_classifier()
    extra = model.graph.input.add()
    extra.CopyFrom(model.graph.input[0])
    extra.name = "mask"
    path = save(model, tmp_path / "two.onnx")
    assert "has 2 inputs (input, mask)" in refusal(capsys, models, path)


def test_an_output_that_is_not_classes_is_refused(tmp_path, models, capsys):
    path = save(tiny_classifier(flatten=False), tmp_path / "maps.onnx")
    assert "needs one output (N, classes)" in refusal(capsys, models, path)


def test_an_op_onnxruntime_cannot_run_is_refused(tmp_path, models, capsys):
    path = save(tiny_classifier(conv_type=TensorProto.DOUBLE), tmp_path / "double.onnx")
    line = refusal(capsys, models, path)
    assert "onnxruntime cannot run double.onnx" in line and "Conv" in line


@pytest.mark.parametrize("location", ["../weights.bin", "/etc/weights.bin", "data/../../weights.bin"])
def test_external_data_outside_the_folder_is_refused(tmp_path, models, capsys, location):
    folder = tmp_path / "export"
    folder.mkdir()
    path = save(with_external_weights(tiny_classifier(), location), folder / "ext.onnx")
    assert f"keeps its data at {location!r}, outside the model's folder" in refusal(capsys, models, path)


def test_a_custom_op_domain_is_refused(tmp_path, models, capsys):
    path = save(tiny_classifier(domain="com.example.ops"), tmp_path / "custom.onnx")
    assert "custom domain(s) com.example.ops" in refusal(capsys, models, path)


def test_a_model_larger_than_the_limit_is_refused(tmp_path, models, capsys, monkeypatch):
    path = save(tiny_classifier(), tmp_path / "tiny.onnx")
    monkeypatch.setenv(MAX_BYTES_VARIABLE, "100")
    assert f"more than the 100 allowed; set {MAX_BYTES_VARIABLE}" in refusal(capsys, models, path)


def test_a_forward_pass_slower_than_the_limit_is_refused(tmp_path, models, capsys):
    path = save(tiny_classifier(), tmp_path / "tiny.onnx")
    assert "more than --max-forward-ms 0" in refusal(capsys, models, path, "--max-forward-ms", "0")


def test_labels_that_do_not_match_the_classes_are_refused(tmp_path, models, capsys):
    path = save(tiny_classifier(), tmp_path / "tiny.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    assert "has 2 labels and the model has 5 classes" in refusal(capsys, models, path, "--labels", str(labels))


def test_a_dynamic_size_without_input_size_is_refused(tmp_path, models, capsys):
    path = save(tiny_classifier(("N", 3, "H", "W")), tmp_path / "dynamic.onnx")
    assert "say --input-size HxW" in refusal(capsys, models, path)


def test_a_name_already_imported_is_refused(tmp_path, models, capsys):
    path = save(tiny_classifier(), tmp_path / "tiny.onnx")
    assert main([str(path), "--name", "mine", "--models-dir", str(models)]) == 0
    capsys.readouterr()
    assert main([str(path), "--name", "mine", "--models-dir", str(models)]) == EXIT_REFUSED
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in (models / "imported").iterdir()) == ["mine"]
