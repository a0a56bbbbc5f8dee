"""Import a user's ONNX image classifier: check it, expose its layers, write ``models/imported/NAME/``.

``python -m service.importer MODEL.onnx --name NAME [options]`` (also ``convlens-import``). The folder holds the
user's file untouched, the copy with every layer exposed (``service.graphs.expose_layers``) and ``manifest.json``
(``service.contract.ImportedModel``), each file with its SHA-256. Everything is written into a hidden folder beside
the target and renamed at the end, so a refusal or a crash leaves nothing behind (the loader skips hidden folders).

A file that cannot be served is refused with one line saying what to do, exit code 2: not ONNX or truncated; not
one 4-D image input; an output that is not (N, classes); an op onnxruntime cannot run; external data outside the
file's folder; a custom op domain; larger than ``CONVLENS_MAX_IMPORTED_MODEL_BYTES``; a forward pass of one image
slower than ``--max-forward-ms``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError

from service.contract import (
    IMPORTED_DIR,
    MANIFEST_FILE,
    STATISTICS_FILE,
    UNLABELLED_STATISTICS_FILE,
    ContractError,
    FileRef,
    ImportedInput,
    ImportedLayer,
    ImportedModel,
    Preprocessing,
    Statistics,
    UnlabelledStatistics,
    read_document,
    write_document,
)
from service.errors import NotApplicableError
from service.graphs.expose_layers import expose_layers, outputs_logits_by_graph
from service.images.preprocessing import default_resize

MAX_BYTES_VARIABLE = "CONVLENS_MAX_IMPORTED_MODEL_BYTES"
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_FORWARD_MS = 2000.0
EXPOSED_FILE = "exposed.onnx"
STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml"}
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
RESERVED_NAMES = {"classifier", "autoencoder"}
# The exposed copy must give the file's own output; onnxruntime may fuse nodes differently once their outputs are
# exposed, which moves float32 results by a few ulps, never more than this (relative to the output's largest value).
PARITY_TOLERANCE = 1e-4
PARITY_IMAGES = 4
TIMED_RUNS = 3
EXIT_REFUSED = 2


class ImportRefused(NotApplicableError, ValueError):
    """The file cannot be imported; the message is one line a person can act on."""


@dataclass(frozen=True)
class ImportOptions:
    """Everything the command line says about one import."""

    name: str
    models_dir: Path = Path("models")
    labels: Path | None = None
    preprocess: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize: int | None = None
    layout: str | None = None
    input_size: tuple[int, int] | None = None
    softmax: str = "auto"
    max_forward_ms: float = DEFAULT_MAX_FORWARD_MS


def max_model_bytes() -> int:
    """The largest model (file plus external data) the importer takes: ``CONVLENS_MAX_IMPORTED_MODEL_BYTES``."""
    value = os.environ.get(MAX_BYTES_VARIABLE, "")
    try:
        return int(value) if value else DEFAULT_MAX_BYTES
    except ValueError:
        raise ImportRefused(f"{MAX_BYTES_VARIABLE}={value!r} is not a number of bytes") from None


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _external_files(model: onnx.ModelProto, folder: Path) -> list[Path]:
    """The external data files the model names, each checked to lie inside ``folder``."""
    found = []
    tensors = list(model.graph.initializer) + [
        attr.t for node in model.graph.node for attr in node.attribute if attr.HasField("t")
    ]
    for tensor in tensors:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        posix, windows = PurePosixPath(location), PureWindowsPath(location)
        if not location or posix.is_absolute() or windows.is_absolute() or ".." in posix.parts + windows.parts:
            raise ImportRefused(
                f"tensor {tensor.name!r} keeps its data at {location!r}, outside the model's folder; save the model "
                "with its external data beside it (a plain file name as location) or inline"
            )
        path = folder / location
        if not path.is_file():
            raise ImportRefused(f"tensor {tensor.name!r} keeps its data in {location!r}, which is not in {folder}")
        found.append(path)
    return sorted(set(found))


def load_checked(path: Path) -> tuple[onnx.ModelProto, list[Path]]:
    """The model with its external data loaded, and those data files; refused when it is too large, not ONNX,
    truncated, outside its folder or in a custom domain."""
    if not path.is_file():
        raise ImportRefused(f"{path} is not a file")
    limit = max_model_bytes()
    if path.stat().st_size > limit:
        raise ImportRefused(
            f"{path.name} is {path.stat().st_size:,} bytes, more than the {limit:,} allowed; set {MAX_BYTES_VARIABLE} "
            "to take larger models"
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, OSError) as exc:
        raise ImportRefused(f"{path.name} is not an ONNX model or is truncated ({exc}); export it again") from None
    if not model.graph.node or not model.opset_import:
        raise ImportRefused(f"{path.name} is not an ONNX model or is truncated (no graph); export it again")
    external = _external_files(model, path.parent)
    total = path.stat().st_size + sum(file.stat().st_size for file in external)
    if total > limit:
        raise ImportRefused(
            f"{path.name} with its external data is {total:,} bytes, more than the {limit:,} allowed; set "
            f"{MAX_BYTES_VARIABLE} to take larger models"
        )
    if external:
        onnx.load_external_data_for_model(model, str(path.parent))
    local = {function.domain for function in model.functions}
    custom = sorted({node.domain for node in model.graph.node} - STANDARD_DOMAINS - local)
    if custom:
        raise ImportRefused(
            f"{path.name} uses ops of the custom domain(s) {', '.join(custom)}, which onnxruntime does not have; "
            "export it with standard ONNX ops only"
        )
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ImportRefused(f"{path.name} is not a valid ONNX model: {first}") from None
    return model, external


def _dims(value: onnx.ValueInfoProto) -> list[int | None]:
    """A value's dimensions, None where symbolic or unknown."""
    return [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]


def _layout(dims: list[int | None], chosen: str | None) -> str:
    """NCHW or NHWC: as chosen, else where the channels (1 or 3) are."""
    if chosen:
        return chosen
    if dims[1] in (1, 3):
        return "nchw"
    if dims[3] in (1, 3):
        return "nhwc"
    raise ImportRefused(
        f"cannot tell where the channels are in the input's shape {dims}; say --layout nchw or --layout nhwc"
    )


def input_spec(model: onnx.ModelProto, options: ImportOptions) -> ImportedInput:
    """The model's one image input: NCHW or NHWC, 1 or 3 channels, a concrete size; refused otherwise."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(value.name for value in inputs) or "none"
        raise ImportRefused(f"the model has {len(inputs)} inputs ({names}); convlens serves models of one image input")
    value = inputs[0]
    dims = _dims(value)
    if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT or len(dims) != 4:
        kind = onnx.TensorProto.DataType.Name(value.type.tensor_type.elem_type)
        raise ImportRefused(
            f"input {value.name!r} is {kind} of shape {dims}; convlens needs a 4-D float image input "
            "(N, C, H, W) or (N, H, W, C)"
        )
    layout = _layout(dims, options.layout)
    channels, height, width = (dims[1], dims[2], dims[3]) if layout == "nchw" else (dims[3], dims[1], dims[2])
    if channels not in (1, 3):
        raise ImportRefused(
            f"input {value.name!r} has {channels} channels in {layout.upper()} (shape {dims}); convlens feeds grey "
            "(1) or RGB (3) images: check --layout"
        )
    if height is None or width is None:
        if options.input_size is None:
            raise ImportRefused(f"input {value.name!r} has a dynamic size {dims}; say --input-size HxW")
        height, width = options.input_size
    elif options.input_size is not None and options.input_size != (height, width):
        raise ImportRefused(f"--input-size {options.input_size} differs from the input's fixed size {height}x{width}")
    return ImportedInput(name=value.name, layout=layout, channels=channels, height=height, width=width, dtype="float32")


def example_batch(spec: ImportedInput, images: int, seed: int = 0) -> np.ndarray:
    """Random images in the model's input shape, values of a normalised picture."""
    shape = (
        (images, spec.channels, spec.height, spec.width)
        if spec.layout == "nchw"
        else (images, spec.height, spec.width, spec.channels)
    )
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def open_session(model: onnx.ModelProto | bytes, what: str) -> ort.InferenceSession:
    """An onnxruntime session; refused (naming the op where onnxruntime does) when it cannot build one."""
    data = model if isinstance(model, bytes) else model.SerializeToString()
    try:
        return ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types, one per failure kind
        first = str(exc).strip().splitlines()[0]
        raise ImportRefused(
            f"onnxruntime cannot run {what}: {first}; export it with ops onnxruntime supports"
        ) from None


def run_checked(session: ort.InferenceSession, batch: np.ndarray, what: str) -> list[np.ndarray]:
    """Every output of one forward pass; refused when onnxruntime fails on it."""
    try:
        return session.run(None, {session.get_inputs()[0].name: batch})
    except Exception as exc:  # onnxruntime raises its own exception types, one per failure kind
        first = str(exc).strip().splitlines()[0]
        raise ImportRefused(f"onnxruntime cannot run {what} on a {batch.shape} input: {first}") from None


def with_free_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a model exported for one image at a time whose input and outputs take any batch (``N``); the
    exposed copy's parity check then proves the graph computes each image of a batch as the file does alone."""
    free = onnx.ModelProto()
    free.CopyFrom(model)
    del free.graph.value_info[:]
    for value in (*free.graph.input, *free.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "N"
    return free


def forward_ms(session: ort.InferenceSession, batch: np.ndarray) -> float:
    """The fastest of TIMED_RUNS forward passes of one image, after one warm-up pass, in milliseconds."""
    feed = {session.get_inputs()[0].name: batch[:1]}
    session.run(None, feed)
    timings = []
    for _ in range(TIMED_RUNS):
        started = time.perf_counter()
        session.run(None, feed)
        timings.append((time.perf_counter() - started) * 1000)
    return min(timings)


def read_labels(path: Path | None, classes: int) -> list[str]:
    """One class name a line (blank lines at the end ignored), as many as the model has classes; else the
    indices."""
    if path is None:
        return [str(index) for index in range(classes)]
    try:
        labels = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportRefused(f"cannot read the labels file {path}: {exc}") from None
    labels = [label.strip() for label in labels]
    if len(labels) != classes:
        raise ImportRefused(f"{path} has {len(labels)} labels and the model has {classes} classes; give one a line")
    return labels


def _per_channel(values: tuple[float, ...] | None, channels: int, default: float, what: str) -> list[float]:
    """One value per channel: as given (one value applies to all), else ``default``."""
    if values is None:
        return [default] * channels
    if len(values) == 1:
        return list(values) * channels
    if len(values) != channels:
        raise ImportRefused(f"--{what} has {len(values)} values and the input has {channels} channels")
    if what == "std" and any(value == 0 for value in values):
        raise ImportRefused("--std holds a zero: every channel's std must be non-zero")
    return list(values)


def preprocessing_for(spec: ImportedInput, options: ImportOptions) -> Preprocessing:
    """The preprocessing the options say; by default ``mnist`` for a 28 x 28 input and ``resize-crop`` otherwise."""
    kind = options.preprocess or ("mnist" if (spec.height, spec.width) == (28, 28) else "resize-crop")
    if kind == "mnist" and (spec.height, spec.width) != (28, 28):
        raise ImportRefused(
            f"--preprocess mnist makes 28x28 images; this model takes {spec.height}x{spec.width}: use resize-crop"
        )
    resize = options.resize or (default_resize(spec.height, spec.width) if kind == "resize-crop" else 28)
    if resize < min(spec.height, spec.width):
        raise ImportRefused(f"--resize {resize} is smaller than the input's shorter side, the crop would be padded")
    std = _per_channel(options.std, spec.channels, 1.0, "std")
    mean = _per_channel(options.mean, spec.channels, 0.0, "mean")
    return Preprocessing(kind=kind, mean=mean, std=std, resize=resize, crop=[spec.height, spec.width])


def _outputs_logits(model: onnx.ModelProto, softmax: str) -> bool:
    """Whether the model's output holds logits: ``--softmax yes`` says so, ``no`` says probabilities, ``auto``
    reads the graph (no Softmax makes the output)."""
    if softmax == "auto":
        return outputs_logits_by_graph(model)
    return softmax == "yes"


def _check_name(options: ImportOptions) -> Path:
    """The target folder; refused when the name is unusable or taken."""
    if not NAME_PATTERN.fullmatch(options.name):
        raise ImportRefused(
            f"--name {options.name!r}: use 1-64 lower-case letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        )
    if options.name in RESERVED_NAMES:
        raise ImportRefused(f"--name {options.name!r} is a shipped model's name; choose another")
    target = options.models_dir / IMPORTED_DIR / options.name
    if target.exists():
        raise ImportRefused(f"{target} already exists; remove it to import again, or choose another --name")
    return target


def import_model(source: Path, options: ImportOptions) -> ImportedModel:
    """Check ``source``, build its exposed copy and write ``models_dir/imported/NAME/``; the manifest written.
    ImportRefused, with nothing written, when the file cannot be served."""
    target = _check_name(options)
    model, external = load_checked(source)
    spec = input_spec(model, options)
    batch = example_batch(spec, PARITY_IMAGES)
    original = open_session(model, source.name)
    outputs = original.get_outputs()
    fixed_batch = original.get_inputs()[0].shape[0] == 1
    per_image = [run_checked(original, batch[i : i + 1], source.name) for i in range(len(batch))] if fixed_batch else []
    results = (
        [np.concatenate(parts) for parts in zip(*per_image)]
        if fixed_batch
        else run_checked(original, batch, source.name)
    )
    if len(outputs) != 1 or results[0].ndim != 2 or results[0].shape[0] != len(batch):
        shapes = ", ".join(f"{output.name} {list(value.shape)}" for output, value in zip(outputs, results))
        raise ImportRefused(
            f"the model's outputs are {shapes} for {len(batch)} images; convlens needs one output (N, classes)"
        )
    elapsed = forward_ms(original, batch)
    if elapsed > options.max_forward_ms:
        raise ImportRefused(
            f"one image takes {elapsed:.0f} ms through {source.name}, more than --max-forward-ms "
            f"{options.max_forward_ms:g}; use a smaller input size or raise the limit"
        )
    outputs_logits = _outputs_logits(model, options.softmax)
    exposed = expose_layers(with_free_batch(model) if fixed_batch else model, batch[:1], outputs_logits)
    exposed_bytes = exposed.model.SerializeToString()
    check = open_session(exposed_bytes, "the exposed copy")
    try:
        parity = _parity(results[0], run_checked(check, batch, "the exposed copy")[0])
    except ImportRefused:
        if not fixed_batch:
            raise
        raise ImportRefused(
            f"{source.name} takes one image at a time and its graph does not run on a batch; export it with a dynamic "
            "batch axis (torch.onnx.export(..., dynamic_axes={'input': {0: 'N'}, 'output': {0: 'N'}}))"
        ) from None
    labels = read_labels(options.labels, results[0].shape[1])
    preprocessing = preprocessing_for(spec, options)

    options.models_dir.joinpath(IMPORTED_DIR).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.name}-partial-", dir=target.parent))
    try:
        shutil.copyfile(source, staging / source.name)
        for file in external:
            destination = staging / file.relative_to(source.parent)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, destination)
        (staging / EXPOSED_FILE).write_bytes(exposed_bytes)
        manifest = ImportedModel(
            name=options.name,
            source=FileRef(file=source.name, sha256=sha256_of(staging / source.name)),
            exposed=FileRef(file=EXPOSED_FILE, sha256=hashlib.sha256(exposed_bytes).hexdigest()),
            opset=max(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")),
            input=spec,
            preprocessing=preprocessing,
            labels=labels,
            outputs_logits=outputs_logits,
            logits=exposed.logits,
            probabilities=exposed.probabilities,
            layers=[
                ImportedLayer(
                    name=layer.name,
                    op_type=layer.op_type,
                    shape=list(layer.shape),
                    node=layer.node,
                    tensor=layer.tensor,
                )
                for layer in exposed.layers
            ],
            parity_max_abs_diff=parity,
            forward_ms=round(elapsed, 3),
            versions={
                "onnx": onnx.__version__,
                "onnxruntime": ort.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        )
        write_document(staging / MANIFEST_FILE, manifest)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _parity(expected: np.ndarray, actual: np.ndarray) -> float:
    """max |exposed copy - file| on the same inputs; refused above PARITY_TOLERANCE (relative to the largest
    output)."""
    diff = float(np.abs(actual - expected).max())
    scale = max(1.0, float(np.abs(expected).max()))
    if diff > PARITY_TOLERANCE * scale:
        raise ImportRefused(
            f"the copy with the layers exposed differs from the file by {diff:.3g} on the same inputs; "
            "report this model to the convlens maintainers"
        )
    return diff


def _floats(text: str) -> tuple[float, ...]:
    """``0.485,0.456,0.406`` (commas or spaces) as floats."""
    try:
        return tuple(float(part) for part in re.split(r"[,\s]+", text.strip()) if part)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of numbers like 0.485,0.456,0.406") from None


def _size(text: str) -> tuple[int, int]:
    """``224x224`` as (height, width)."""
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 224x224 (height x width)")
    return int(match[1]), int(match[2])


def analysis_files(folder: Path, name: str, model: Path) -> dict[str, Path]:
    """The files of the dataset analysis in ``folder`` (relative name -> path): its statistics document and every
    file it lists, each checked against its SHA-256; ImportRefused unless it was computed from ``model`` (its
    bytes' SHA-256) served as ``name``."""
    names = [file for file in (STATISTICS_FILE, UNLABELLED_STATISTICS_FILE) if (folder / file).is_file()]
    if not names:
        raise ImportRefused(f"--analysis {folder} holds neither {STATISTICS_FILE} nor {UNLABELLED_STATISTICS_FILE}")
    kind = Statistics if names[0] == STATISTICS_FILE else UnlabelledStatistics
    try:
        document = read_document(folder / names[0], kind)
    except ContractError as exc:
        raise ImportRefused(str(exc)) from exc
    source_sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    if (document.model, document.model_sha256) != (name, source_sha256):
        raise ImportRefused(
            f"--analysis {folder} was computed from {document.model!r} (SHA-256 {document.model_sha256[:12]}…), "
            f"not from {model} imported as {name!r} (SHA-256 {source_sha256[:12]}…)"
        )
    files = {names[0]: folder / names[0]}
    for ref in [document.top_images, *document.plots.values()]:
        path = folder / ref.file
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != ref.sha256:
            raise ImportRefused(f"--analysis {folder}: {ref.file} is missing or not the file {names[0]} lists")
        files[ref.file] = path
    return files


def install_analysis(files: dict[str, Path], folder: Path) -> None:
    """Copy the analysis' ``files`` (``analysis_files``) into the imported model's ``folder``, its statistics
    document last, so that the service never reads a document whose files are not all there yet."""
    document, *others = files
    for relative in [*others, document]:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[relative], target)


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m service.importer``."""
    parse = argparse.ArgumentParser(
        prog="convlens-import",
        description="Check an ONNX image classifier and write models/imported/NAME/ for convlens to serve.",
    )
    parse.add_argument("model", type=Path, help="the .onnx file (external data beside it)")
    parse.add_argument("--name", required=True, help="the name it is served under (lower case, digits, . _ -)")
    parse.add_argument("--models-dir", type=Path, default=Path("models"), help="the service's model folder")
    parse.add_argument("--labels", type=Path, help="class names, one a line (default: the class indices)")
    parse.add_argument(
        "--preprocess",
        choices=("mnist", "resize-crop"),
        help="mnist: the shipped digit pipeline (28x28 inputs); resize-crop: resize the shorter side, centre-crop "
        "(default: mnist for 28x28 inputs, else resize-crop)",
    )
    parse.add_argument("--mean", type=_floats, help="per-channel mean, after scaling to [0, 1] (default 0)")
    parse.add_argument("--std", type=_floats, help="per-channel std, after scaling to [0, 1] (default 1)")
    parse.add_argument("--resize", type=int, help="the shorter side before the crop (default: input size x 256/224)")
    parse.add_argument("--layout", choices=("nchw", "nhwc"), help="the input's layout (default: from the graph)")
    parse.add_argument("--input-size", type=_size, help="HxW, only for a graph whose spatial size is dynamic")
    parse.add_argument(
        "--softmax",
        choices=("auto", "yes", "no"),
        default="auto",
        help="whether the output holds logits (yes: a softmax is added for the probabilities; auto: logits unless "
        "a Softmax makes the output)",
    )
    parse.add_argument(
        "--analysis",
        type=Path,
        metavar="DIR",
        help="a dataset analysis of this model (`python -m training analyze --images ... --model NAME`'s "
        "statistics.json or unlabelled_statistics.json, top_images.npz, plots/) to install beside it",
    )
    parse.add_argument(
        "--max-forward-ms",
        type=float,
        default=DEFAULT_MAX_FORWARD_MS,
        help=f"refuse a model whose forward pass of one image takes longer (default {DEFAULT_MAX_FORWARD_MS:g})",
    )
    return parse


def main(argv: list[str] | None = None) -> int:
    """Import one model; 0 and a summary line on success, EXIT_REFUSED and one line on a refusal."""
    args = parser().parse_args(argv)
    options = ImportOptions(
        name=args.name,
        models_dir=args.models_dir,
        labels=args.labels,
        preprocess=args.preprocess,
        mean=args.mean,
        std=args.std,
        resize=args.resize,
        layout=args.layout,
        input_size=args.input_size,
        softmax=args.softmax,
        max_forward_ms=args.max_forward_ms,
    )
    try:
        analysis = None if args.analysis is None else analysis_files(args.analysis, args.name, args.model)
        manifest = import_model(args.model, options)
        if analysis is not None:
            install_analysis(analysis, options.models_dir / IMPORTED_DIR / manifest.name)
    except ImportRefused as exc:
        print(f"convlens-import: refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    spec = manifest.input
    print(
        f"imported {args.model} as {manifest.name} into {options.models_dir / IMPORTED_DIR / manifest.name}: "
        f"{spec.layout.upper()} {spec.channels}x{spec.height}x{spec.width}, {len(manifest.labels)} classes, "
        f"{len(manifest.layers)} layers, {manifest.forward_ms:.1f} ms per image, "
        f"parity {manifest.parity_max_abs_diff:.2g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
