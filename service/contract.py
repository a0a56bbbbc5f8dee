"""The one contract between ``training`` (which writes the model folder) and the service (which reads it).

File names, tensor names, plot names and the two JSON documents, ``manifest.json`` and ``statistics.json``, are
defined here once, as typed pydantic models validated on load. A malformed file gives a one-line
``ContractError`` naming the file and the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, ValidationError, model_serializer

from service.errors import UnavailableError

MANIFEST_FILE = "manifest.json"
STATISTICS_FILE = "statistics.json"
# The dataset analysis of an unlabelled dataset (a flat folder): the layer-wide results, no per-class part.
UNLABELLED_STATISTICS_FILE = "unlabelled_statistics.json"
TOP_IMAGES_FILE = "top_images.npz"
EVOLUTION_FILE = "evolution.npz"
OPTIMIZED_INPUTS_FILE = "optimized_inputs.npz"
DIGIT_JUDGE_FILE = "digit_judge.npz"
CLASSES_KEY = "classes"
PLOTS_DIR = "plots"
VARIANTS_DIR = "variants"
IMPORTED_DIR = "imported"
COMPARISON_JSON = "comparison.json"
COMPARISON_MD = "comparison.md"

INPUT_NAME = "input"
CLASSIFIER = "classifier"
AUTOENCODER = "autoencoder"
VARIANT_MODEL = CLASSIFIER
PROBABILITIES = "output"
SPATIAL_LAYERS = ("conv1", "conv2", "pool")

# EVOLUTION_FILE (``python -m training train``) holds, for each recorded epoch (``epochs``, (E,)), over a fixed subset
# of the test split (``subset``, (S,) indices), every spatial filter's strongest image: per layer ``<layer>_index``
# (E, C) its test-split index, ``<layer>_norm`` (E, C) the L2 norm of its feature map and ``<layer>_projection``
# (E, C, 28, 28) float16 its deconvolution projection of that filter with that epoch's weights; ``indices`` (K,)
# and ``images`` (K, 28, 28) uint8 are the images those indices name.
EVOLUTION_FIELDS = ("index", "norm", "projection")

MANIFEST_FORMAT = 1
IMPORTED_FORMAT = 1
STATISTICS_FORMAT = 1
STATISTICS_NORM = "l2"
RULES = ("image-mean", "dataset-mean", "filter-label-mean")
SUMMARY = ("min", "q1", "median", "q3", "max", "mean", "std")
LABELS = 10


class ContractError(UnavailableError, ValueError):
    """A file of the model folder does not follow the contract; the message names the file and the field."""


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class InputSpec(_Document):
    name: str = INPUT_NAME
    shape: list[int | None]
    dtype: str
    range: list[float]


class OutputSpec(_Document):
    name: str
    shape: list[int | None]


class LayerSpec(_Document):
    name: str
    type: str
    output_shape: list[int]
    params: int


class FileRef(_Document):
    """A file of the model folder and its SHA-256."""

    file: str
    sha256: str


class ModelEntry(_Document):
    """One exported model: its file and checksum, tensors, layers, recipe, metrics and curves; for the classifier,
    optionally the features recorded while it trained (``evolution``, an ``EVOLUTION_FILE``)."""

    file: str
    sha256: str
    opset: int
    input: InputSpec
    outputs: list[OutputSpec]
    layers: list[LayerSpec]
    total_params: int
    training: dict[str, Any]
    metrics: dict[str, Any]
    history: dict[str, list[float]]
    parity_max_abs_diff: dict[str, float]
    evolution: FileRef | None = None

    @model_serializer(mode="wrap")
    def _without_absent_evolution(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Leave ``evolution`` out when there is none, so that entries without it are written as before."""
        data = handler(self)
        if data.get("evolution") is None:
            data.pop("evolution", None)
        return data

    @property
    def layer_shapes(self) -> dict[str, list[int]]:
        """Output shape (without batch) of every layer the ONNX file exposes, in graph order."""
        return {output.name: output.shape[1:] for output in self.outputs}


class Manifest(_Document):
    """``manifest.json``: every model of a folder by name, and the library versions that made them."""

    format: Literal[1] = MANIFEST_FORMAT
    models: dict[str, ModelEntry]
    versions: dict[str, str]


class ImportedInput(_Document):
    """The image input of an imported model: its tensor name, layout, channels (1 grey, 3 RGB), spatial size and
    element type."""

    name: str
    layout: Literal["nchw", "nhwc"]
    channels: int
    height: int
    width: int
    dtype: str


class Preprocessing(_Document):
    """How an image becomes the model's input: ``mnist`` (the shipped digit pipeline) or ``resize-crop`` (the
    shorter side to ``resize``, then the centre ``crop`` (height, width)); both scale to [0, 1] and then apply
    ``(x - mean) / std`` per channel."""

    kind: Literal["mnist", "resize-crop"]
    mean: list[float]
    std: list[float]
    resize: int
    crop: list[int]


class ImportedLayer(_Document):
    """One exposed graph output: its readable name, the op that makes it, its shape (batch as None) and the node
    (and that node's output tensor) it comes from."""

    name: str
    op_type: str
    shape: list[int | None]
    node: str
    tensor: str


class ImportedModel(_Document):
    """``manifest.json`` of ``models/imported/NAME/``: the user's file untouched and the copy with every layer
    exposed, each with its SHA-256; the input, the preprocessing, the labels; whether the file's output holds logits;
    the outputs that hold the logits and the probabilities; the layers; and the parity and timing measured at
    import."""

    format: Literal[1] = IMPORTED_FORMAT
    name: str
    source: FileRef
    exposed: FileRef
    opset: int
    input: ImportedInput
    preprocessing: Preprocessing
    labels: list[str]
    outputs_logits: bool
    logits: str | None
    probabilities: str
    layers: list[ImportedLayer]
    parity_max_abs_diff: float
    forward_ms: float
    versions: dict[str, str]

    @property
    def layer_shapes(self) -> dict[str, list[int | None]]:
        """Output shape (without batch) of every exposed layer, in graph order."""
        return {layer.name: layer.shape[1:] for layer in self.layers}


class TopImages(_Document):
    indices: list[list[int]]
    norms: list[list[float]]
    labels: list[list[int]]


class UnlabelledLayerStatistics(_Document):
    """One layer over an unlabelled dataset: the dataset threshold, the norm distributions over every image
    (``norms["all"]``) and the top images (labels -1)."""

    filters: int
    dataset_threshold: float
    norms: dict[str, dict[str, list[float | None]]]
    top_images: TopImages


class LayerStatistics(_Document):
    """One layer over the analysed split: active-filter counts per rule and class, norms, top images."""

    filters: int
    dataset_threshold: float
    active_counts: dict[str, list[list[int]]]
    filter_label_means: list[list[float]]
    norms: dict[str, dict[str, list[float | None]]]
    top_images: TopImages


class InvarianceAverage(_Document):
    """Invariance curves averaged over a group of images, one value per amount."""

    images: int
    probability: list[float]
    accuracy: list[float]
    distance: dict[str, list[float]]


class TransformInvariance(_Document):
    unit: str
    amounts: list[float]
    all: InvarianceAverage
    digits: list[InvarianceAverage]


class InvarianceStatistics(_Document):
    """Zeiler and Fergus' figure 5 over the first ``images`` of the split, per transform
    (``service.studies.invariance``):
    the probability of the true digit, the share still classified as it, and each layer's distance from the
    untransformed image."""

    images: int
    transforms: dict[str, TransformInvariance]


class OptimizedLayer(_Document):
    """Per filter (or class) of one layer: the mean activation (the logit for classes) on its optimized input,
    and the largest mean activation over the analysed images."""

    activation: list[float]
    dataset_max: list[float]


class OptimizedInputs(_Document):
    """Inputs made by gradient ascent to excite each filter of the spatial layers and each class
    (``OPTIMIZED_INPUTS_FILE``: uint8 (N, 28, 28) arrays named after the layers, and ``classes``)."""

    file: str
    sha256: str
    method: str
    layers: dict[str, OptimizedLayer]


class DigitJudge(_Document):
    """The "is this a digit?" judge (``service.studies.digit_judge``): its parameters (``DIGIT_JUDGE_FILE``), the
    threshold
    above which an input is judged not digit-like (calibrated on the analysed split to flag ``target_rate`` of its
    digits), the shares it flags of those digits, of letters rendered from fonts and of uniform noise, and the ROC AUC
    (letters and noise against the digits) of every score tried, the judge's own included."""

    file: str
    sha256: str
    method: str
    fitted_on: str
    threshold: float
    target_rate: float
    flagged_digits: float
    flagged_letters: float
    flagged_noise: float
    letters: int
    noise: int
    auc: dict[str, float]


class MethodFaithfulness(_Document):
    """One attribution method over the analysed images: the mean deletion and insertion curves and areas, and
    the parameters it ran with."""

    deletion_auc: float
    insertion_auc: float
    deletion: list[float]
    insertion: list[float]
    parameters: dict[str, Any]
    seconds: float


class AttributionStatistics(_Document):
    """Faithfulness of every attribution method (``service.attribution``) over the first ``images`` of the split:
    the target's probability as the map's pixels are removed (deletion) or added (insertion), ``fractions`` of the
    image at a time, for each method and for a random pixel order (the reference). ``target`` says which class the
    maps explain (``predicted``)."""

    images: int
    target: str
    fractions: list[float]
    random_deletion_auc: float
    random_insertion_auc: float
    random_deletion: list[float]
    random_insertion: list[float]
    methods: dict[str, MethodFaithfulness]


class MetricSpread(_Document):
    """One column of the quality table for one method: the mean and standard deviation over the ``images`` where
    the metric is defined (None when none is)."""

    mean: float | None
    std: float | None
    images: int


class MethodQuality(_Document):
    """One method's row of the quality table: each column's spread, the parameters it ran with, its seconds."""

    metrics: dict[str, MetricSpread]
    parameters: dict[str, Any]
    seconds: float


class QualityTable(_Document):
    """Every attribution method's quality metrics (``service.quality``) over a seeded sample of the split: the
    test images at ``indices`` (``images`` of them, drawn with ``seed``), the maps of the ``target`` class; each
    column (``service.quality.summary.COLUMNS``) and whether ``lower`` or ``higher`` is ``better``."""

    images: int
    seed: int
    indices: list[int]
    target: str
    better: dict[str, str]
    methods: dict[str, MethodQuality]


class UnlabelledStatistics(_Document):
    """``UNLABELLED_STATISTICS_FILE``: the layer-wide dataset analyses of one model over a dataset without labels
    (``python -m training analyze --images FLAT_FOLDER``); ``model`` is the served name of the model (``classifier``
    for a models folder's own classifier)."""

    format: Literal[1] = STATISTICS_FORMAT
    model: str
    model_sha256: str
    split: str
    images: int
    skipped: int
    data_sha256: dict[str, str]
    norm: str
    layers: dict[str, UnlabelledLayerStatistics]
    top_images: FileRef
    plots: dict[str, FileRef]


class Statistics(_Document):
    """``statistics.json``: the dataset statistics of one classifier (``python -m training analyze``); ``model`` is
    ``classifier`` for a models folder's own classifier, an imported model's name for an imported model (its
    folder ``imported/NAME/`` holds the file); ``label_counts`` has one entry per class of the model."""

    format: Literal[1] = STATISTICS_FORMAT
    model: str
    model_sha256: str
    split: str
    images: int
    data_sha256: dict[str, str]
    norm: str
    accuracy: float
    label_counts: list[int]
    rules: list[str]
    layers: dict[str, LayerStatistics]
    top_images: FileRef
    plots: dict[str, FileRef]
    invariance: InvarianceStatistics | None = None
    optimized_inputs: OptimizedInputs | None = None
    digit_judge: DigitJudge | None = None
    attribution: AttributionStatistics | None = None
    explanation_quality: QualityTable | None = None


def evolution_key(layer: str, field: str) -> str:
    """The name of one layer's array in ``EVOLUTION_FILE``, e.g. ``conv2_norm``."""
    return f"{layer}_{field}"


def plot_name(kind: str, layer: str | None = None, rule: str | None = None, label: int | None = None) -> str:
    """The name of a statistics plot, e.g. ``active-filters-conv2-image-mean-label-3`` (file: ``plots/<name>.png``)."""
    parts = [kind, layer, rule] + ([] if label is None else ["label", str(label)])
    return "-".join(part for part in parts if part is not None)


Document = TypeVar("Document", bound=BaseModel)


def parse_document(path: Path, text: str, kind: type[Document]) -> Document:
    """``text`` (the contents of ``path``) validated as ``kind``; ContractError with the file and first bad field."""
    try:
        return kind.model_validate_json(text)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(document)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ContractError(f"{path}: field {where}: {error['msg']}{more}") from exc


def read_document(path: Path, kind: type[Document]) -> Document:
    """Read and validate ``path`` as ``kind``; ContractError when it is absent or malformed."""
    if not path.is_file():
        raise ContractError(f"{path} not found")
    return parse_document(path, path.read_text(), kind)


def read_verified(
    folder: Path,
    ref: FileRef,
    error: type[Exception],
    missing: Callable[[Path], str],
    changed: Callable[[Path, str], str],
) -> bytes:
    """The bytes of ``ref``'s file in ``folder`` when its SHA-256 is the listed one; else ``error`` with the message
    ``missing(path)`` (no such file) or ``changed(path, actual SHA-256)``: each reader of a listed file keeps its own
    error kind and words."""
    path = folder / ref.file
    if not path.is_file():
        raise error(missing(path))
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != ref.sha256:
        raise error(changed(path, actual))
    return data


def write_document(path: Path, document: BaseModel, indent: int | None = 2) -> Path:
    """Write ``document`` as JSON (validated again first, so that training never writes what the service refuses)."""
    type(document).model_validate(document.model_dump())
    path.write_text(document.model_dump_json(indent=indent) + "\n")
    return path
