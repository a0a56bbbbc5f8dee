"""Pydantic models of every JSON response."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"status": 404, "error": "unknown layer 'conv3'"}]})
    status: int = Field(description="the HTTP status, repeated")
    error: str = Field(description="what went wrong and what to do about it")


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    models: list[str] = Field(examples=[["classifier", "autoencoder"]])


class Layer(BaseModel):
    name: str = Field(examples=["conv1"])
    type: str = Field(examples=["Conv2D"])
    output_shape: list[int] = Field(examples=[[26, 26, 32]])
    params: int = Field(examples=[320])
    exposed: bool = Field(description="whether the layer's output can be asked for by name")


class ModelSummary(BaseModel):
    name: str = Field(examples=["classifier"])
    kind: Literal["shipped", "imported"] = Field(
        "shipped",
        description="`shipped`: trained by convlens (the paper's models and variants); `imported`: a user's ONNX "
        "classifier (python -m service.importer)",
    )
    layers: list[str] = Field(description="the layers the API exposes", examples=[["conv1", "conv2", "pool"]])
    total_params: int | None = Field(examples=[1199882], description="null for an imported model")
    metrics: dict[str, Any] = Field(description="test metrics recorded at training time (empty when imported)")
    training: dict[str, Any] = Field(
        description="the training configuration (activation, optimizer, epochs, ...; empty when imported)"
    )


class ModelDetail(ModelSummary):
    layer_details: list[Layer]
    history: dict[str, list[float]] = Field(description="per-epoch loss, accuracy and seconds")
    sha256: str
    opset: int


class ImportedLayerDetail(BaseModel):
    name: str = Field(examples=["conv1"])
    op_type: str = Field(description="the ONNX op that makes it", examples=["Relu"])
    shape: list[int | None] = Field(description="its output shape, the batch as null", examples=[[None, 16, 28, 28]])
    node: str = Field(description="the graph node it comes from")


class Capabilities(BaseModel):
    endpoints: list[str] = Field(description="the routes that serve this model")
    not_applicable: list[str] = Field(
        description="the /v1 route families that answer 422 for it (they serve only the shipped models)"
    )
    attribution_methods: list[str] = Field(description="the attribution methods it serves")
    attribution_needs_gradients: list[str] = Field(
        description="attribution methods that need gradients it does not have (422; empty when it has them)"
    )
    no_gradients: str | None = Field(
        description="why it has no gradients: the first op between input and logits without a backward rule, and "
        "its node (null when it has them)"
    )


class ImportedModelDetail(ModelSummary):
    input: dict[str, Any] = Field(description="tensor name, layout (nchw or nhwc), channels, height, width, dtype")
    preprocessing: dict[str, Any] = Field(
        description="`mnist` or `resize-crop`, the per-channel mean and std, the resize and the crop"
    )
    labels: list[str] = Field(description="the class names, in class order")
    outputs_logits: bool = Field(description="whether the file's output holds logits (softmax applied after)")
    layer_details: list[ImportedLayerDetail]
    capabilities: Capabilities
    sha256: str = Field(description="SHA-256 of the user's file")
    opset: int
    forward_ms: float = Field(description="one image's forward pass measured at import, in milliseconds")
    cost: int = Field(description="one image's work in units of the shipped classifier's forward pass")
    memory_bytes: int = Field(description="the estimate of its session's memory (weights + every layer for 6 images)")


class ModelList(BaseModel):
    models: list[ModelSummary]


class _WithoutAbsentLabels(BaseModel):
    """An answer that leaves ``label`` and ``top`` out when they are absent (a shipped model's, unless asked)."""

    @model_serializer(mode="wrap")
    def _without_absent_labels(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        for name in ("label", "top"):
            if data.get(name, 0) is None:
                data.pop(name)
        return data


class TopClass(BaseModel):
    index: int = Field(ge=0, description="the class index")
    label: str = Field(description="the class's name (its index for the shipped models)")
    probability: float


class Classification(_WithoutAbsentLabels):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {"model": "classifier", "digit": 7, "probabilities": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]}
            ]
        },
    )
    model: str
    digit: int = Field(ge=0, description="the most probable class (a digit 0-9 for the shipped models)")
    probabilities: list[float] = Field(min_length=1, description="one per class (10 for the shipped models)")
    digit_like: bool | None = Field(
        None, description="whether the judge takes the input for a digit; null when its calibration is absent"
    )
    digit_like_score: float | None = Field(None, description="the judge's score: higher is less like a digit")
    digit_like_threshold: float | None = Field(None, description="scores above it are judged not digit-like")
    label: str | None = Field(None, description="an imported model's name of the class (absent for shipped models)")
    top: list[TopClass] | None = Field(
        None,
        description="the most probable classes, most probable first: `?top=` of them, by default all up to 10 for "
        "an imported model (absent for a shipped model unless asked)",
    )


class BatchItem(_WithoutAbsentLabels):
    digit: int = Field(ge=0, description="the most probable class (a digit 0-9 for the shipped models)")
    probabilities: list[float] = Field(min_length=1, description="one per class (10 for the shipped models)")
    digit_like: bool | None = Field(
        None, description="whether the judge takes the input for a digit; null when its calibration is absent"
    )
    digit_like_score: float | None = Field(None, description="the judge's score: higher is less like a digit")
    digit_like_threshold: float | None = Field(None, description="scores above it are judged not digit-like")
    label: str | None = Field(None, description="an imported model's name of the class (absent for shipped models)")
    top: list[TopClass] | None = Field(None, description="the most probable classes, as for one image")


class BatchClassification(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    count: int = Field(examples=[2])
    results: list[BatchItem] = Field(description="one per image, in upload order")


class Activations(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    layer: str = Field(examples=["conv1"])
    shape: list[int] = Field(examples=[[26, 26, 32]])
    values: list[Any] = Field(description="nested H x W x C (or C for dense layers)")


class FeatureMap(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    layer: str = Field(examples=["conv1"])
    filter: int = Field(examples=[3])
    shape: list[int] = Field(examples=[[26, 26]])
    values: list[list[float]]


class ActiveFilters(BaseModel):
    model_config = ConfigDict(
        protected_namespaces=(),
        json_schema_extra={
            "examples": [
                {
                    "model": "classifier",
                    "layer": "conv1",
                    "norm": "l2",
                    "threshold_rule": "mean",
                    "threshold": 5.2,
                    "norms": [4.1, 7.3],
                    "active": [1],
                }
            ]
        },
    )
    model: str
    layer: str
    norm: str
    threshold_rule: str
    threshold: float
    norms: list[float]
    active: list[int] = Field(description="indices of active filters, ascending")


class ComparedProjection(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["tanh-sgd"])
    values: list[list[float]] = Field(description="the 28x28 projection under this model")


class ProjectionComparison(BaseModel):
    layer: str = Field(examples=["conv1"])
    filter: int = Field(examples=[5])
    shape: list[int] = Field(examples=[[28, 28]])
    models: list[ComparedProjection] = Field(description="one projection per compared model, in request order")


class Projection(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    layer: str = Field(examples=["conv2"])
    filter: int = Field(examples=[5])
    shape: list[int] = Field(
        examples=[[28, 28]], description="28 x 28 for a shipped model; an imported model's input shape (C, H, W)"
    )
    values: list[list[float]] | list[list[list[float]]]


class Encoding(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["autoencoder"])
    shape: list[int] = Field(examples=[[4, 4, 8]])
    values: list[Any] = Field(description="nested 4 x 4 x 8")


class Reconstruction(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["autoencoder"])
    shape: list[int] = Field(examples=[[28, 28]])
    values: list[list[float]]


class ActivationGrid(BaseModel):
    """A layer's feature maps as one PNG mosaic (1x, each map min-max scaled on its own) and where each map sits:
    tile k is at row k // columns, column k % columns, its top-left pixel at (column * (tile[1] + pad),
    row * (tile[0] + pad)); it shows filter k, or past 64 maps filter channels[k]."""

    image: str = Field(
        description="the mosaic as a `data:image/png;base64,…` URL", examples=["data:image/png;base64,…"]
    )
    columns: int = Field(description="tiles per row (ceil(sqrt(C)))", examples=[6])
    rows: int = Field(examples=[6])
    tile: list[int] = Field(description="one tile's height and width in pixels", examples=[[26, 26]])
    pad: int = Field(description="pixels between tiles", examples=[1])
    width: int = Field(description="the mosaic's width in pixels", examples=[161])
    height: int = Field(description="the mosaic's height in pixels", examples=[161])
    channels: list[int] | None = Field(
        default=None,
        description="past 64 maps, the filter each tile shows (the 64 most active, most active first); null when "
        "tile k shows filter k",
        examples=[None],
    )


class InspectedLayer(BaseModel):
    layer: str = Field(examples=["conv1"])
    shape: list[int] = Field(examples=[[26, 26, 32]])
    norm: str = Field(examples=["l2"])
    threshold_rule: str = Field(examples=["mean"])
    threshold: float
    norms: list[float] = Field(description="one norm per filter")
    active: list[int] = Field(description="indices of active filters, ascending (as POST /v1/active-filters)")
    grid: ActivationGrid


class Inspection(_WithoutAbsentLabels):
    """Everything the web page shows for one digit."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    digit: int = Field(ge=0, examples=[7], description="the most probable class (a digit 0-9 for the shipped models)")
    probabilities: list[float] = Field(min_length=1, description="one per class (10 for the shipped models)")
    input: str = Field(
        description="the image the network saw, as a PNG data URL: a shipped model's 28x28 digit (0 black, 1 white), "
        "an imported model's input with its channels averaged, min-max scaled"
    )
    layers: list[InspectedLayer] = Field(description="every spatial layer of the classifier, in graph order")
    reconstruction: str | None = Field(
        description="the autoencoder's 28x28 reconstruction as a PNG data URL "
        "(min-max scaled), null when no autoencoder is loaded"
    )
    digit_like: bool | None = Field(
        None, description="whether the judge takes the input for a digit; null when its calibration is absent"
    )
    digit_like_score: float | None = Field(None, description="the judge's score: higher is less like a digit")
    digit_like_threshold: float | None = Field(None, description="scores above it are judged not digit-like")
    label: str | None = Field(None, description="an imported model's name of the class (absent for shipped models)")
    top: list[TopClass] | None = Field(None, description="an imported model's most probable classes, up to 10")


# --- dataset statistics (python -m training analyze) and filters -------------------------------------------


class StatisticsLayer(BaseModel):
    layer: str = Field(examples=["conv1"])
    filters: int = Field(examples=[32])
    dataset_threshold: float = Field(
        description="mean L2 norm over every feature map of every analysed image (`threshold=dataset`)", examples=[2.73]
    )
    never_active: dict[str, list[int]] = Field(
        description="per rule, the filters active in no analysed image", examples=[{"image-mean": [7, 20]}]
    )


class StatisticsSummary(BaseModel):
    """What the shipped statistics were computed from, and what they cover."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    model_sha256: str = Field(description="the classifier the statistics were computed from (the served one)")
    split: str = Field(examples=["test"])
    images: int = Field(examples=[10000])
    labelled: bool = Field(
        True, description="whether the analysed dataset had labels (without: no per-class results, 404)"
    )
    label_counts: list[int] | None = Field(description="analysed images per class (null without labels)")
    accuracy: float | None = Field(
        description="the classifier's accuracy on the analysed images (null without labels)", examples=[0.9946]
    )
    norm: str = Field(examples=["l2"])
    rules: list[str] = Field(examples=[["image-mean", "dataset-mean", "filter-label-mean"]])
    layers: list[StatisticsLayer]
    plots: list[str] = Field(description="names of the pre-rendered plots")


class ActiveFilterCounts(BaseModel):
    """In how many images of each digit each filter is active (the paper's section 3.2)."""

    layer: str = Field(examples=["conv1"])
    rule: str = Field(examples=["image-mean"])
    split: str = Field(examples=["test"])
    norm: str = Field(examples=["l2"])
    labels: list[int] = Field(description="the digits of the rows of `counts`", examples=[[3]])
    images: list[int] = Field(description="analysed images of each of those digits", examples=[[1010]])
    counts: list[list[int]] = Field(description="[label][filter]: images of the digit in which the filter is active")
    never_active: list[int] = Field(description="filters active in none of these images")
    dataset_threshold: float | None = Field(None, description="rule `dataset-mean`: the threshold used")
    filter_label_means: list[list[float]] | None = Field(
        None,
        description="rule `filter-label-mean`: [label][filter] the filter's mean norm over the digit's "
        "images, the threshold used",
    )


class FilterNormSummary(BaseModel):
    filter: int = Field(examples=[0])
    min: float
    q1: float = Field(description="first quartile")
    median: float
    q3: float = Field(description="third quartile")
    max: float
    mean: float
    std: float = Field(description="population standard deviation")


class NormDistribution(BaseModel):
    """Box-plot statistics of every filter's feature-map norm (the paper's figures 11-12)."""

    layer: str = Field(examples=["conv2"])
    split: str = Field(examples=["test"])
    norm: str = Field(examples=["l2"])
    label: int | None = Field(description="the digit, or null for all images", examples=[None])
    images: int = Field(examples=[10000])
    dataset_threshold: float
    filters: list[FilterNormSummary]


class ConfusionMatrix(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    images: int = Field(examples=[10000])
    accuracy: float = Field(examples=[0.9946])
    per_class_accuracy: list[float] = Field(min_length=10, max_length=10)
    matrix: list[list[int]] = Field(description="[true digit][predicted digit] image counts")


class TrainingHistory(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    epochs: int = Field(examples=[15])
    training: dict[str, Any] = Field(description="the training configuration")
    history: dict[str, list[float]] = Field(description="per-epoch metrics (`val_*`: on the test set) and seconds")


class TopImage(BaseModel):
    rank: int = Field(ge=1, le=9, examples=[1])
    index: int = Field(description="index of the image in the analysed MNIST split", examples=[4017])
    label: int = Field(ge=-1, description="the image's class (-1: the dataset had no labels)", examples=[7])
    norm: float = Field(description="L2 norm of the filter's feature map for this image", examples=[9.81])


class TopImages(BaseModel):
    """The images of the analysed split with the strongest activation of one filter (Zeiler and Fergus' top 9)."""

    layer: str = Field(examples=["conv2"])
    filter: int = Field(examples=[5])
    split: str = Field(examples=["test"])
    norm: str = Field(examples=["l2"])
    images: list[TopImage]


class ConvWeights(BaseModel):
    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    layer: str = Field(examples=["conv1"])
    shape: list[int] = Field(description="filters x kernel height x kernel width", examples=[[32, 3, 3]])
    kernels: list[list[list[float]]] = Field(
        description="[filter][row][column], as the convolution applies them (cross-correlation)"
    )


class EvolutionEpoch(BaseModel):
    epoch: int = Field(ge=1, description="the epoch after which the weights were taken (1-based)", examples=[3])
    index: int = Field(description="the test image with the filter's strongest feature map then", examples=[1204])
    norm: float = Field(description="L2 norm of the filter's feature map for that image", examples=[14.2])


class FilterEvolution(BaseModel):
    """One filter's strongest test image at each recorded epoch of training (Zeiler and Fergus, figure 4)."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    layer: str = Field(examples=["conv2"])
    filter: int = Field(examples=[5])
    split: str = Field(examples=["test"])
    images: int = Field(description="the size of the fixed subset searched: the first N test images", examples=[2000])
    epochs: list[EvolutionEpoch]


# --- feature invariance (Zeiler and Fergus, section 4.1) -----------------------------------------------------


class InvarianceCurves(BaseModel):
    """One digit under one transform (``POST /v1/invariance``): per amount, in order."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    transform: str = Field(examples=["rotate"])
    unit: str = Field(description="unit of the amounts: `px`, `degrees` or `factor`", examples=["degrees"])
    target: int = Field(description="the tracked class (default: the one predicted for the upload)", examples=[7])
    amounts: list[float] = Field(description="the transform's amounts (shifts rounded to whole pixels)")
    probability: list[float] = Field(description="the target's probability at each amount")
    predicted: list[int] = Field(description="the predicted class at each amount")
    distance: dict[str, list[float]] = Field(
        description="per layer (conv1, conv2, pool, dense1), the Euclidean distance between the transformed input's "
        "layer vector and the original's, at each amount"
    )
    inputs: list[str] = Field(description="each transformed 28x28 input as a PNG data URL")


class InvarianceAverage(BaseModel):
    images: int = Field(description="analysed images in this group", examples=[1000])
    probability: list[float] = Field(description="mean probability of the true digit at each amount")
    accuracy: list[float] = Field(description="share of the images still classified as their true digit")
    distance: dict[str, list[float]] = Field(description="per layer, the mean distance from the original")


class InvarianceTransformAverage(BaseModel):
    transform: str = Field(examples=["rotate"])
    unit: str = Field(examples=["degrees"])
    amounts: list[float]
    all: InvarianceAverage
    digits: list[InvarianceAverage] | None = Field(description="per true digit 0-9 (or the one `label` asked for)")


class InvarianceStatisticsAnswer(BaseModel):
    """The curves of ``POST /v1/invariance`` averaged over the first test images (``python -m training analyze``)."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    split: str = Field(examples=["test"])
    images: int = Field(examples=[1000])
    label: int | None = Field(description="the digit asked for, or null for every digit")
    transforms: list[InvarianceTransformAverage]


class OptimizedInput(BaseModel):
    """An input made by gradient ascent to excite one filter (its mean activation) or one class (its logit)."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    layer: str = Field(description="`conv1`, `conv2`, `pool`, or `output` for a class", examples=["conv2"])
    index: int = Field(description="the filter, or the class", examples=[5])
    shape: list[int] = Field(examples=[[28, 28]])
    values: list[list[float]] = Field(description="28 x 28 in [0, 1] (0 black, 1 white), 8-bit steps")


class ComputedOptimizedInput(BaseModel):
    """An imported model's input made on request by gradient ascent to excite one filter (its mean activation) or
    one class (its logit), with the objective at it and at the ascent's random start."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["mnist-cnn"])
    layer: str = Field(description="the layer, or the logits' output for a class", examples=["features.6.Relu"])
    index: int = Field(description="the filter, or the class", examples=[5])
    shape: list[int] = Field(description="the model's input, channels first (C, H, W)", examples=[[1, 28, 28]])
    values: list[list[list[float]]] = Field(description="the pixels in [0, 1], the normalisation undone")
    objective: float = Field(description="the filter's mean activation (a class: its logit) at this input")
    start_objective: float = Field(description="the same at the ascent's random start")
    steps: int = Field(examples=[128])
    seed: int = Field(examples=[0])
    method: str = Field(description="the ascent's rule")


class AttributionFaithfulness(BaseModel):
    """Deletion and insertion areas of this map (``?faithfulness=true``), beside a random pixel order's."""

    deletion_auc: float = Field(
        description="area under the target's probability as the map's pixels are removed "
        "(set to 0), 1/32 of the image per step, strongest |map| first: lower is better"
    )
    insertion_auc: float = Field(description="the same as they are added onto a black image: higher is better")
    random_deletion_auc: float = Field(description="deletion area of a random pixel order (the reference)")
    random_insertion_auc: float = Field(description="insertion area of a random pixel order (the reference)")


class MetricCurveArea(BaseModel):
    """A deletion or insertion curve's area for the map's pixel order and for a random one."""

    area: float = Field(description="area under the target's probability curve (deletion: lower is better)")
    random_area: float = Field(description="the same for a random pixel order (the reference to beat)")


class MetricRoad(BaseModel):
    """ROAD (Rong et al. 2022): whether the prediction stays the target as pixels are imputed in the map's order."""

    area: float = Field(description="the share of `percentages` at which the prediction is still the target")
    percentages: list[int] = Field(description="the percentages of the pixels removed by noisy linear imputation")
    correct: list[bool] = Field(description="at each percentage, whether the prediction is still the target")


class LayerSimilarityAnswer(BaseModel):
    layer: str = Field(description="the model randomised from its last layer down to this one")
    spearman: float | None = Field(description="rank correlation of |map| with the original's (null: constant map)")
    ssim: float | None = Field(description="structural similarity of |map| with the original's")


class ParameterRandomization(BaseModel):
    """Adebayo et al.'s cascading model parameter randomisation test."""

    passes: bool = Field(description="the fully randomised model's map has Spearman below `spearman_threshold`")
    order: str
    layers: int = Field(description="the model's parametrised layers, all re-drawn by the last step")
    spearman_threshold: float
    similarity: list[LayerSimilarityAnswer]


class RandomLogit(BaseModel):
    """The map of a random other class compared with the original."""

    passes: bool = Field(description="the other class's map has SSIM below `ssim_threshold`")
    other_class: int = Field(description="the other class explained, drawn uniformly (seed 0)")
    ssim: float | None
    ssim_threshold: float


class Sanity(BaseModel):
    """Adebayo et al. (2018): a map that survives randomising the model or the class does not explain the model."""

    passes: bool = Field(description="both tests pass")
    parameter_randomization: ParameterRandomization
    random_logit: RandomLogit


class AttributionMetrics(BaseModel):
    """The quality metrics asked for with `metrics` (docs: Explanation quality); the others are null."""

    deletion: MetricCurveArea | None = None
    insertion: MetricCurveArea | None = None
    road_morf: MetricRoad | None = Field(None, description="most relevant first: lower `area` is better")
    road_lerf: MetricRoad | None = Field(None, description="least relevant first: higher `area` is better")
    faithfulness_correlation: float | None = Field(None, description="Bhatt et al. 2020: higher is better")
    max_sensitivity: float | None = Field(None, description="Yeh et al. 2019: largest map change, lower is better")
    sparseness: float | None = Field(None, description="Gini index of |map| (Chalasani et al. 2020), 0-1")
    effective_complexity: int | None = Field(None, description="pixels with |map| above 1e-5 of its maximum")
    completeness_gap: float | None = Field(None, description="integrated gradients: Σ map − (f(x) − f(black))")
    sanity: Sanity | None = None


class Attribution(BaseModel):
    """One digit's attribution map (``POST /v1/attribution/{method}?format=json``)."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    method: str = Field(examples=["saliency"])
    target: int = Field(description="the explained class (default: the predicted one)", examples=[7])
    predicted: int = Field(description="the class the model predicts", examples=[7])
    probability: float = Field(description="the target's softmax probability")
    signed: bool = Field(description="whether the map takes both signs (false: Grad-CAM, never negative)")
    shape: list[int] = Field(
        description="shape of `values`: 28x28, the layer's HxW for grad-cam, the square positions for occlusion; "
        "for an imported model's input maps its input's shape (C x H x W or H x W x C)",
        examples=[[28, 28]],
    )
    values: list[list[float]] | list[list[list[float]]] = Field(
        description="the raw map, unnormalised (an imported model's input maps in its input layout)"
    )
    pixels: list[list[float]] | None = Field(
        None,
        description="occlusion: 28x28, each pixel the mean drop of the squares covering it (Captum's); an imported "
        "model's maps over its H x W input (input maps' channels summed, Grad-CAM resized)",
    )
    parameters: dict[str, Any] = Field(description="the method's parameters used", examples=[{"steps": 50}])
    faithfulness: AttributionFaithfulness | None = Field(None, description="with `faithfulness=true`")
    metrics: AttributionMetrics | None = Field(None, description="with `metrics`: the map's quality metrics")


class AttributionItem(BaseModel):
    target: int = Field(examples=[7])
    probability: float
    values: list[list[float]] | list[list[list[float]]]
    pixels: list[list[float]] | None = Field(None, description="as in the single answer")
    metrics: AttributionMetrics | None = Field(None, description="this image's quality metrics, with `metrics`")


class AttributionBatch(BaseModel):
    """Many digits' maps (``POST /v1/attribution/{method}/batch``), in input order."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    method: str = Field(examples=["saliency"])
    count: int
    signed: bool
    shape: list[int] = Field(description="shape of each map's `values`")
    parameters: dict[str, Any]
    results: list[AttributionItem]


class AttributionMethodStatistics(BaseModel):
    method: str = Field(examples=["integrated-gradients"])
    rank: int = Field(description="1 for the lowest deletion area (the most faithful map)")
    deletion_auc: float = Field(description="mean deletion area over the images: lower is better")
    insertion_auc: float = Field(description="mean insertion area: higher is better")
    deletion: list[float] = Field(description="the mean deletion curve, one value per fraction")
    insertion: list[float] = Field(description="the mean insertion curve")
    parameters: dict[str, Any]


class QualityCell(BaseModel):
    metric: str = Field(examples=["deletion"])
    mean: float | None = Field(description="the mean over the images where the metric is defined")
    std: float | None = Field(description="the spread: the standard deviation over those images")
    images: int = Field(description="how many images define it (a constant map has no correlation)")
    rank: int | None = Field(description="1 for the best mean of the column among the methods")


class QualityRow(BaseModel):
    method: str = Field(examples=["integrated-gradients"])
    metrics: list[QualityCell]
    parameters: dict[str, Any]


class QualityTableAnswer(BaseModel):
    """Every method's quality metrics over a seeded sample of the test set (docs: Explanation quality)."""

    images: int = Field(examples=[4])
    seed: int
    indices: list[int] = Field(description="the test images the sample holds")
    target: str = Field(examples=["predicted"])
    better: dict[str, str] = Field(description="each metric: whether `lower` or `higher` is better")
    methods: list[QualityRow]


class AttributionStatisticsAnswer(BaseModel):
    """Deletion and insertion curves of every method over the first test images (``python -m training
    analyze``), against a random pixel order, and the quality table; an imported model's analysis holds the
    quality table alone (``analyze --images DIR --model NAME --only quality``): its curve fields are null and
    ``methods`` empty."""

    model_config = ConfigDict(protected_namespaces=())
    model: str = Field(examples=["classifier"])
    split: str = Field(examples=["test"])
    images: int | None = Field(None, examples=[1000], description="the images of the curves (null: no curves)")
    target: str | None = Field(None, description="which class the maps explain", examples=["predicted"])
    fractions: list[float] | None = Field(None, description="share of the pixels removed or added at each step")
    random_deletion_auc: float | None = None
    random_insertion_auc: float | None = None
    random_deletion: list[float] | None = None
    random_insertion: list[float] | None = None
    methods: list[AttributionMethodStatistics] = Field(description="ranked by deletion area, best first")
    quality: QualityTableAnswer | None = Field(
        None, description="every method's quality metrics over a seeded sample (null: not computed)"
    )
