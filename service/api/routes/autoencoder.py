"""The autoencoder: reconstruct an uploaded digit, or show its 4x4x8 code."""

import numpy as np
from fastapi import APIRouter
from fastapi.responses import Response

from service.api.deps import Digit, Format, RegistryDep, Scale, find_model
from service.api.error_responses import ERRORS
from service.api.render import PNG_RESPONSE, Labels, grid_png, json_response, map_png
from service.api.schemas import Encoding, Reconstruction
from service.api.uploads import IMAGE_BODY
from service.pictures.labels import caption

router = APIRouter(prefix="/v1/autoencoder", tags=["autoencoder"], responses=ERRORS)


@router.post(
    "/reconstruct",
    response_model=Reconstruction,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="The autoencoder's reconstruction: PNG (default, 28x28 x scale) or JSON raw values",
)
def reconstruct(digit: Digit, registry: RegistryDep, format: Format = "png", scale: Scale = 8) -> Response:
    model = find_model(registry, "autoencoder")
    decoded = model.run(digit, ["decoded"])["decoded"][0, ..., 0]
    if format == "png":
        return map_png(decoded, scale)
    return json_response(Reconstruction(model=model.name, shape=list(decoded.shape), values=decoded.tolist()))


@router.post(
    "/encode",
    response_model=Encoding,
    responses=PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="The 4x4x8 code of a digit: JSON (default) or a PNG grid of its 8 channels",
)
def encode(
    digit: Digit, registry: RegistryDep, format: Format = "json", scale: Scale = 8, labels: Labels = False
) -> Response:
    model = find_model(registry, "autoencoder")
    code = model.run(digit, ["encoded"])["encoded"][0]
    if format == "png":
        about = caption("encoded of autoencoder", "the uploaded image", "each channel min-max scaled on its own")
        return grid_png(np.moveaxis(code, -1, 0), scale, about if labels else None, "channels")
    return json_response(Encoding(model=model.name, shape=list(code.shape), values=code.tolist()))
