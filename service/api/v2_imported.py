"""The Open Inference Protocol for an imported model: its metadata (its own input, every layer as an output) and
its inference requests, whose one input is a batch in the model's own input shape and name, already preprocessed
(any finite FP32 values). The document, the outputs, the limits and the answer are read and written as for the
shipped models (``service.api.v2_tensors``)."""

from __future__ import annotations

import numpy as np

from service.api.v2_tensors import (
    BINARY_DATA_SIZE,
    FP32,
    PLATFORM,
    VERSION,
    InferenceCall,
    MetadataTensor,
    ModelMetadata,
    _bad,
    _check_answer_size,
    _document,
    _outputs,
    _refuse_unsupported,
    _split_body,
)
from service.images.npy import check_count
from service.images.preprocessing import input_shape
from service.runtime.imported import ImportedLoadedModel


def imported_metadata(model: ImportedLoadedModel) -> ModelMetadata:
    """The model's input (batch -1) and every exposed layer as an output, FP32."""
    spec = model.manifest.input
    return ModelMetadata(
        name=model.name,
        versions=[VERSION],
        platform=PLATFORM,
        inputs=[MetadataTensor(name=spec.name, datatype=FP32, shape=[-1, *input_shape(spec)])],
        outputs=[
            MetadataTensor(name=name, datatype=FP32, shape=[-1, *(size or -1 for size in shape)])
            for name, shape in model.layer_shapes.items()
        ],
    )


def _inputs(body_inputs: list, binary: memoryview, model: ImportedLoadedModel, max_images: int) -> np.ndarray:
    """The one input as float32 (N, *input shape), its values checked to be finite."""
    spec = model.manifest.input
    shape = input_shape(spec)
    names = [tensor.name for tensor in body_inputs]
    if names != [spec.name]:
        raise _bad(f"the model takes one input, {spec.name!r}; the request has {names}")
    tensor = body_inputs[0]
    _refuse_unsupported(tensor.parameters, f"input {spec.name!r}")
    if tensor.datatype != FP32:
        raise _bad(f"input {spec.name!r} has datatype {tensor.datatype}; the model takes {FP32}")
    if len(tensor.shape) != 4 or tuple(tensor.shape[1:]) != shape or tensor.shape[0] < 0:
        raise _bad(f"input {spec.name!r} has shape {tensor.shape}; the model takes [N, {', '.join(map(str, shape))}]")
    count = tensor.shape[0]
    check_count(count, max_images)
    expected = count * int(np.prod(shape))
    if BINARY_DATA_SIZE in (tensor.parameters or {}):
        size = tensor.parameters[BINARY_DATA_SIZE]
        if tensor.data is not None or type(size) is not int or size != expected * 4 or len(binary) != size:
            raise _bad(
                f"input {spec.name!r}: {BINARY_DATA_SIZE} must be {expected * 4} (shape {tensor.shape} of {FP32}), "
                f"the bytes that follow the JSON document, and no data beside it"
            )
        values = np.frombuffer(binary, dtype="<f4")
    elif len(binary):
        raise _bad(f"{len(binary)} bytes follow the JSON document, but no input declares {BINARY_DATA_SIZE}")
    else:
        try:
            values = np.asarray(tensor.data if tensor.data is not None else [], dtype=np.float64).ravel()
        except (ValueError, TypeError, OverflowError) as exc:
            raise _bad(f"input {spec.name!r}: data is not a rectangular array of numbers ({exc})") from exc
        if values.size != expected:
            raise _bad(f"input {spec.name!r}: data holds {values.size} values, shape {tensor.shape} needs {expected}")
    if not np.isfinite(values).all():
        raise _bad(f"input {spec.name!r} holds NaN or Inf; values must be finite")
    return values.astype(np.float32).reshape(count, *shape)


def read_imported_inference(
    body: bytes, header_length: str | None, model: ImportedLoadedModel, max_images: int, max_response_bytes: int
) -> InferenceCall:
    """An inference request for ``model`` checked against it and the limits: 400 for a malformed document or
    tensor, 404 for an unknown output, 413 past the batch or answer limit."""
    text, binary = _split_body(body, header_length)
    request = _document(text)
    images = _inputs(request.inputs, binary, model, max_images)
    outputs = _outputs(request, model)
    _check_answer_size(model, len(images), outputs, max_response_bytes)
    return InferenceCall(images, outputs, request.id)
