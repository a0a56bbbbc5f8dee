"""Everything the web page shows for one digit, in one round trip: classification, every spatial layer's norms,
active filters and activation grid, the network's input and the autoencoder's reconstruction. For an imported
model, every layer with feature maps; a layer's grid holds its 64 most active maps past 64 (``activations``)."""

import base64
import math

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.deps import AnyModel, AnyModelDep, DatasetThreshold, Digit, Norm, RegistryDep, judge_of, layer_rule
from service.api.error_responses import ERRORS
from service.api.render import json_response, png_bytes
from service.api.schemas import ActivationGrid, InspectedLayer, Inspection
from service.api.uploads import IMAGE_BODY
from service.featuremaps.norms import shown_channels
from service.pictures.grids import tile, to_uint8
from service.runtime.imported import ImportedLoadedModel
from service.studies import classification
from service.studies.layers import channels_last, layer_activity, spatial_layers

router = APIRouter(prefix="/v1", tags=["inspect"], responses=ERRORS)

PAD = 1


def data_url(pixels: np.ndarray) -> str:
    """A 2-D uint8 array as a ``data:image/png;base64,…`` URL."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def _grid(maps: np.ndarray) -> ActivationGrid:
    """The (H, W, C) maps as one mosaic like the PNG grids of /v1/activations, at 1x, with its geometry; past 64
    maps, the 64 most active, most active first, and which filters those are."""
    channels = shown_channels(maps, None)
    if channels is not None:
        maps = maps[..., channels]
    height, width, count = maps.shape
    columns = math.ceil(math.sqrt(count))
    mosaic = tile(maps, columns=columns, pad=PAD, channels_last=True)
    return ActivationGrid(
        image=data_url(mosaic),
        columns=columns,
        rows=math.ceil(count / columns),
        tile=[height, width],
        pad=PAD,
        width=mosaic.shape[1],
        height=mosaic.shape[0],
        channels=channels,
    )


def _input_picture(model: AnyModel, digit: np.ndarray) -> str:
    """What the network saw as a PNG data URL: a shipped model's 28x28 digit (0 black, 1 white); an imported
    model's input, its channels averaged and min-max scaled."""
    if not isinstance(model, ImportedLoadedModel):
        return data_url(to_uint8(digit.reshape(28, 28), 0.0, 1.0))
    image = digit[0] if model.manifest.input.layout == "nhwc" else np.moveaxis(digit[0], 0, -1)
    return data_url(to_uint8(image.mean(axis=-1)))


@router.post(
    "/inspect",
    response_model=Inspection,
    openapi_extra=IMAGE_BODY,
    summary="Everything about one digit in one round trip: class, every spatial layer's norms, active "
    "filters and activation grid (PNG data URL), the input and the autoencoder's reconstruction",
)
def inspect(
    digit: Digit,
    model: AnyModelDep,
    registry: RegistryDep,
    request: Request,
    rule: DatasetThreshold = "mean",
    norm: Norm = "l2",
) -> Response:
    spatial = spatial_layers(model)
    classified = classification.classify(model, digit, judge_of(request, model), spatial)
    outputs = classified.outputs
    layers = []
    for name in spatial:
        maps = channels_last(model, outputs[name][0])
        activity = layer_activity(maps, norm, layer_rule(request, model, name, norm, rule))
        layers.append(
            InspectedLayer(
                layer=name,
                shape=list(maps.shape),
                norm=norm,
                threshold_rule=str(rule),
                threshold=activity.threshold,
                norms=activity.norms.tolist(),
                active=activity.active,
                grid=_grid(maps),
            )
        )
    autoencoder = registry.models.get("autoencoder")
    reconstruction = None
    if autoencoder is not None and "decoded" in autoencoder.layer_shapes and not isinstance(model, ImportedLoadedModel):
        decoded = autoencoder.run(digit, ["decoded"])["decoded"][0, ..., 0]
        reconstruction = data_url(to_uint8(decoded))
    return json_response(
        Inspection(
            model=model.name,
            input=_input_picture(model, digit),
            layers=layers,
            reconstruction=reconstruction,
            **classified.answers()[0],
        )
    )
