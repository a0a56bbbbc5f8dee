"""The Open Inference Protocol (KServe v2) documents and its tensor codec: request -> images, outputs -> answer.

The protocol's REST documents are those of https://github.com/kserve/open-inference-protocol
(specification/protocol/inference_rest.md). Tensors travel as JSON (``data``: flat or nested, row-major) or through
the binary tensor data extension as Triton documents it and ``tritonclient`` uses it by default: the body is the
JSON document, ``Inference-Header-Content-Length`` bytes long, followed by each binary tensor's bytes
(little-endian, row-major, no padding) in the order the document lists the tensors; ``binary_data_size`` sizes an
input, ``binary_data`` asks for one output in binary, ``binary_data_output`` for every output.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.api.errors import ApiError, NotFound, PayloadTooLarge
from service.client_text import excerpt
from service.contract import INPUT_NAME
from service.images.npy import check_count
from service.runtime.registry import LoadedModel

HEADER_LENGTH = "Inference-Header-Content-Length"
BINARY_DATA_SIZE = "binary_data_size"
BINARY_DATA = "binary_data"
BINARY_DATA_OUTPUT = "binary_data_output"
UNSUPPORTED_PARAMETERS = {
    "shared_memory_region": "shared memory is not supported: send the tensor in the body",
    "classification": "the classification extension is not supported: ask for the 'output' tensor",
}
EXTENSIONS = ["binary_tensor_data"]
VERSION = "1"
PLATFORM = "onnxruntime_onnx"
FP32 = "FP32"
ONNX_DATATYPES = {"tensor(float)": FP32}
NUMPY_DATATYPES = {np.dtype(np.float32): FP32}
IMAGE = (28, 28)
IMAGE_SHAPES = ("[N, 28, 28, 1]", "[N, 28, 28]")
IMAGE_VALUES = math.prod(IMAGE)
# The most bytes a float32 value takes as a JSON number with its comma: orjson writes a float32's shortest
# round-trip repr (at most 9 significant digits, -1.1754944e-38 is 15 bytes); 24, a float64 repr's longest, bounds it.
JSON_NUMBER_BYTES = 24
JSON_PIECE_VALUES = 65_536
# Answers with more values than this are streamed from the result arrays; smaller ones are one body.
STREAM_ABOVE_VALUES = 65_536
MAX_QUOTED_SIDES = 6

Parameters = dict[str, Any]


class _Document(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


class _Request(_Document):
    """Request documents are read strictly: a shape of 28.0 or an id of 42 is a malformed request, not a guess."""

    model_config = ConfigDict(protected_namespaces=(), strict=True)


class InferenceError(_Document):
    """Every error under /v2, in the protocol's shape."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"error": "unknown model 'vgg'"}]})
    error: str = Field(description="what went wrong and what to do about it")


class ServerLive(_Document):
    live: bool


class ServerReady(_Document):
    ready: bool


class ModelReady(_Document):
    name: str = Field(examples=["classifier"])
    ready: bool


class ServerMetadata(_Document):
    name: str = Field(examples=["convlens"])
    version: str = Field(examples=["0.1.0"])
    extensions: list[str] = Field(examples=[EXTENSIONS])


class MetadataTensor(_Document):
    name: str = Field(examples=["conv1"])
    datatype: str = Field(examples=[FP32])
    shape: list[int] = Field(description="-1 for the batch dimension", examples=[[-1, 26, 26, 32]])


class ModelMetadata(_Document):
    name: str = Field(examples=["classifier"])
    versions: list[str] = Field(examples=[[VERSION]])
    platform: str = Field(examples=[PLATFORM])
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor] = Field(description="every named layer, in graph order")


class RequestInput(_Request):
    name: str = Field(examples=[INPUT_NAME])
    shape: list[int] = Field(examples=[[1, 28, 28, 1]])
    datatype: str = Field(examples=[FP32])
    parameters: Parameters | None = Field(None, description="`binary_data_size`: the tensor's bytes follow the JSON")
    data: Any = Field(None, description="the values in [0, 1], flat or nested, row-major (absent when binary)")


class RequestOutput(_Request):
    name: str = Field(examples=["output"])
    parameters: Parameters | None = Field(None, description="`binary_data`: true for a binary answer")


class InferenceRequest(_Request):
    id: str | None = None
    parameters: Parameters | None = Field(None, description="`binary_data_output`: every output in binary")
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = Field(None, description="the layers to answer; none named: every layer")


class ResponseOutput(_Document):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = Field(None, description="`binary_data_size` when the tensor follows the JSON")
    data: list[float] | None = Field(None, description="the values, flat, row-major (absent when binary)")


class InferenceResponse(_Document):
    model_name: str
    model_version: str
    id: str | None = None
    outputs: list[ResponseOutput]


def inline_schema(document: type[BaseModel]) -> dict:
    """``document``'s JSON schema with every ``$ref`` replaced by its definition, for an OpenAPI request body
    (whose ``#/...`` references would point at the OpenAPI document's root, not at the schema's ``$defs``)."""
    schema = document.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: object) -> object:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    return resolve(schema)


def _bad(message: str) -> ApiError:
    return ApiError(message, status=400, rejected_upload="bad_tensor")


def model_metadata(model: LoadedModel) -> ModelMetadata:
    """The model's metadata document: its input and every named layer, with datatype and shape (batch: -1)."""
    types = {arg.name: ONNX_DATATYPES[arg.type] for arg in (*model.session.get_inputs(), *model.session.get_outputs())}

    def tensor(name: str, shape: list[int | None]) -> MetadataTensor:
        return MetadataTensor(name=name, datatype=types[name], shape=[-1 if size is None else size for size in shape])

    entry = model.entry
    return ModelMetadata(
        name=model.name,
        versions=[VERSION],
        platform=PLATFORM,
        inputs=[tensor(entry.input.name, entry.input.shape)],
        outputs=[tensor(out.name, out.shape) for out in entry.outputs],
    )


@dataclass
class InferenceCall:
    """A request read and checked: the images, the outputs to answer (name -> binary?) in order, the request id."""

    images: np.ndarray
    outputs: dict[str, bool]
    request_id: str | None


def quoted_shape(shape: list[int]) -> str:
    """A client's shape in an error message: its first sides, each a bounded excerpt."""
    sides = [excerpt(side) for side in shape[:MAX_QUOTED_SIDES]]
    return f"[{', '.join(sides)}{', …' if len(shape) > MAX_QUOTED_SIDES else ''}]"


async def inference_body(request: Request) -> bytes:
    """The request body (admission control has already held it to ``max_upload_bytes``), uncompressed only."""
    encoding = request.headers.get("content-encoding", "identity").lower()
    if encoding != "identity":
        raise ApiError(f"Content-Encoding {excerpt(encoding)} is not supported: send the body uncompressed", status=400)
    return await request.body()


def _split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON document and the binary tensor data after it."""
    if header_length is None:
        return body, memoryview(b"")
    if not header_length.isdigit() or not 0 < int(header_length) <= len(body):
        raise _bad(
            f"{HEADER_LENGTH} must be the JSON document's length in bytes, between 1 and the body's {len(body)}; "
            f"got {excerpt(header_length)}"
        )
    return body[: int(header_length)], memoryview(body)[int(header_length) :]


def _document(text: bytes | memoryview) -> InferenceRequest:
    """The request document, parsed by orjson and checked by the models: ``data`` stays the parsed list (``Any``),
    which ``_json_values`` reads into one array, never walked value by value in Python."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"malformed inference request: Invalid JSON: {excerpt(str(exc), 120)}") from exc
    try:
        return InferenceRequest.model_validate(parsed)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise _bad(f"malformed inference request: {where + ': ' if where else ''}{error['msg']}") from exc


def _flag(parameters: Parameters | None, name: str, default: bool) -> bool:
    value = (parameters or {}).get(name, default)
    if not isinstance(value, bool):
        raise _bad(f"parameter {name!r} must be true or false, got {excerpt(value)}")
    return value


def _refuse_unsupported(parameters: Parameters | None, where: str) -> None:
    for name, reason in UNSUPPORTED_PARAMETERS.items():
        if name in (parameters or {}):
            raise _bad(f"{where}: parameter {name!r}: {reason}")


def _image_count(tensor: RequestInput, max_images: int) -> int:
    """N from the input's shape [N, 28, 28, 1] or [N, 28, 28] (413 above ``max_images``)."""
    if tensor.datatype != FP32:
        raise _bad(
            f"input {INPUT_NAME!r} has datatype {excerpt(tensor.datatype)}; the model takes {FP32} values in [0, 1]"
        )
    shape = tensor.shape
    if len(shape) not in (3, 4) or tuple(shape[1:3]) != IMAGE or shape[3:] not in ([], [1]) or shape[0] < 0:
        raise _bad(f"input {INPUT_NAME!r} has shape {quoted_shape(shape)}; the model takes {' or '.join(IMAGE_SHAPES)}")
    check_count(shape[0], max_images)
    return shape[0]


def _binary_values(tensor: RequestInput, binary: memoryview, count: int) -> np.ndarray:
    size = tensor.parameters[BINARY_DATA_SIZE]
    expected = count * IMAGE_VALUES * 4
    if tensor.data is not None:
        raise _bad(f"input {INPUT_NAME!r} has both data and {BINARY_DATA_SIZE}: send its values one way")
    if type(size) is not int or size != expected:
        raise _bad(
            f"input {INPUT_NAME!r}: {BINARY_DATA_SIZE} is {excerpt(size)}, but shape {quoted_shape(tensor.shape)} "
            f"of {FP32} is {expected} bytes"
        )
    if len(binary) != size:
        raise _bad(
            f"the body holds {len(binary)} bytes after the JSON document, but {BINARY_DATA_SIZE} declares {size}"
        )
    return np.frombuffer(binary, dtype="<f4")


def _json_values(tensor: RequestInput, count: int) -> np.ndarray:
    if tensor.data is None:
        raise _bad(f"input {INPUT_NAME!r} has no data: send data, or its bytes after the JSON with {BINARY_DATA_SIZE}")
    try:
        values = np.asarray(tensor.data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(
            f"input {INPUT_NAME!r}: data is not a rectangular array of numbers ({excerpt(str(exc), 120)})"
        ) from exc
    if values.dtype.kind not in "iuf":
        raise _bad(f"input {INPUT_NAME!r}: data must hold numbers only (found {values.dtype.kind!r} values)")
    if values.size != count * IMAGE_VALUES:
        raise _bad(
            f"input {INPUT_NAME!r}: data holds {values.size} values, shape {quoted_shape(tensor.shape)} needs "
            f"{count * IMAGE_VALUES}"
        )
    return values.ravel()


def _images(request: InferenceRequest, binary: memoryview, max_images: int) -> np.ndarray:
    """The one input as float32 (N, 28, 28), its values checked to be finite and in [0, 1]."""
    names = [tensor.name for tensor in request.inputs]
    if names != [INPUT_NAME]:
        quoted = ", ".join(excerpt(name) for name in names[:MAX_QUOTED_SIDES])
        raise _bad(f"the model takes one input, {INPUT_NAME!r}; the request has [{quoted}]")
    tensor = request.inputs[0]
    _refuse_unsupported(tensor.parameters, f"input {INPUT_NAME!r}")
    count = _image_count(tensor, max_images)
    if BINARY_DATA_SIZE in (tensor.parameters or {}):
        values = _binary_values(tensor, binary, count)
    elif len(binary):
        raise _bad(f"{len(binary)} bytes follow the JSON document, but no input declares {BINARY_DATA_SIZE}")
    else:
        values = _json_values(tensor, count)
    if not np.isfinite(values).all():
        raise _bad(f"input {INPUT_NAME!r} holds NaN or Inf; values must be finite, in [0, 1]")
    if values.min() < 0 or values.max() > 1:
        raise _bad(f"input {INPUT_NAME!r} holds values outside [0, 1] (MNIST scaling: pixel / 255)")
    return values.astype(np.float32, copy=False).reshape(count, *IMAGE)


def _outputs(request: InferenceRequest, model: LoadedModel) -> dict[str, bool]:
    """Each requested output (every layer when none is named) -> whether it is answered in binary."""
    every = model.layer_shapes
    default = _flag(request.parameters, BINARY_DATA_OUTPUT, False)
    chosen: dict[str, bool] = {}
    for output in request.outputs or [RequestOutput(name=name) for name in every]:
        if output.name not in every:
            raise NotFound(f"model {model.name!r} has no output {excerpt(output.name)}; outputs: {', '.join(every)}")
        if output.name in chosen:
            raise _bad(f"output {excerpt(output.name)} is requested twice")
        _refuse_unsupported(output.parameters, f"output {excerpt(output.name)}")
        chosen[output.name] = _flag(output.parameters, BINARY_DATA, default)
    return chosen


def _check_answer_size(model: LoadedModel, count: int, outputs: dict[str, bool], limit: int) -> None:
    """413 when the tensors asked for, or the answer's bytes (JSON numbers at their longest), are over ``limit``."""
    per_image = sum(math.prod(model.layer_shapes[name]) * 4 for name in outputs)
    if count * per_image > limit:
        raise PayloadTooLarge(
            f"the answer would hold {count * per_image:,} bytes of tensors ({count} images x {per_image:,} bytes of "
            f"{', '.join(outputs)}); the limit is {limit:,} bytes: ask for fewer outputs or send fewer images",
            rejected_upload="response_too_large",
        )
    size = answer_size_bound(model, count, outputs)
    if size > limit:
        as_json = [name for name, binary in outputs.items() if not binary]
        raise PayloadTooLarge(
            f"the answer would take up to {size:,} bytes ({', '.join(as_json)} as JSON numbers, up to "
            f"{JSON_NUMBER_BYTES} bytes a value, for {count} images); the limit is {limit:,} bytes: ask for binary "
            f"outputs ({BINARY_DATA_OUTPUT}: true), fewer outputs or fewer images",
            rejected_upload="response_too_large",
        )


def answer_size_bound(model: LoadedModel, count: int, outputs: dict[str, bool]) -> int:
    """The most bytes the answer's tensors can take: 4 a value in binary, JSON_NUMBER_BYTES a value as JSON."""
    return sum(
        count * math.prod(model.layer_shapes[name]) * (4 if binary else JSON_NUMBER_BYTES)
        for name, binary in outputs.items()
    )


def read_inference(
    body: bytes, header_length: str | None, model: LoadedModel, max_images: int, max_response_bytes: int
) -> InferenceCall:
    """An inference request (JSON, or JSON then binary tensors) checked against the model and the limits:
    400 for a malformed document or tensor, 404 for an unknown output, 413 past the batch or answer limit."""
    text, binary = _split_body(body, header_length)
    request = _document(text)
    images = _images(request, binary, max_images)
    outputs = _outputs(request, model)
    _check_answer_size(model, len(images), outputs, max_response_bytes)
    return InferenceCall(images, outputs, request.id)


def _json_numbers(array: np.ndarray) -> Iterator[bytes]:
    """``array``'s values as a JSON list, in pieces of JSON_PIECE_VALUES values written by orjson straight from the
    array (each float32's shortest repr that reads back to it): no Python float is made."""
    flat = np.ascontiguousarray(array).ravel()
    if flat.size <= JSON_PIECE_VALUES:
        yield orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY)
        return
    yield b"["
    for start in range(0, flat.size, JSON_PIECE_VALUES):
        piece = orjson.dumps(flat[start : start + JSON_PIECE_VALUES], option=orjson.OPT_SERIALIZE_NUMPY)[1:-1]
        yield (b"," if start else b"") + piece
    yield b"]"


def inference_response(model: LoadedModel, call: InferenceCall, results: dict[str, np.ndarray]) -> Response:
    """The answer: JSON, or (when any output is binary) the JSON document followed by the binary tensors, as
    application/octet-stream with ``Inference-Header-Content-Length``, as Triton answers.

    The JSON numbers are written piece by piece from the result arrays, never as Python lists of floats (16.7 M
    floats as Python objects took 1.2-1.9 GB). A small answer is one body; a larger one is streamed, encoded as
    the client reads (in a worker thread, off the event loop), so that its memory stays the tensors'."""
    binary = {name: np.ascontiguousarray(results[name], dtype="<f4") for name, wanted in call.outputs.items() if wanted}
    pieces = _json_document(model, call, results, binary)
    headers, media_type = {}, "application/json"
    if binary:
        header = b"".join(pieces)
        pieces = itertools.chain([header], (memoryview(array).cast("B") for array in binary.values()))
        headers, media_type = {HEADER_LENGTH: str(len(header))}, "application/octet-stream"
    if sum(results[name].size for name in call.outputs) <= STREAM_ABOVE_VALUES:
        return Response(b"".join(pieces), media_type=media_type, headers=headers)
    return StreamingResponse(pieces, media_type=media_type, headers=headers)


def _json_document(
    model: LoadedModel, call: InferenceCall, results: dict[str, np.ndarray], binary: dict[str, np.ndarray]
) -> Iterator[bytes]:
    """The JSON answer document in pieces: each output's values written from its array, or, for an output in
    ``binary``, its ``binary_data_size``."""
    top: dict[str, Any] = {"model_name": model.name, "model_version": VERSION}
    if call.request_id is not None:
        top["id"] = call.request_id
    yield orjson.dumps(top)[:-1] + b',"outputs":['
    for position, name in enumerate(call.outputs):
        array = results[name]
        fields: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": NUMPY_DATATYPES[array.dtype]}
        separator = b"," if position else b""
        if name in binary:
            fields["parameters"] = {BINARY_DATA_SIZE: binary[name].nbytes}
            yield separator + orjson.dumps(fields)
            continue
        yield separator + orjson.dumps(fields)[:-1] + b',"data":'
        yield from _json_numbers(array)
        yield b"}"
    yield b"]}"
