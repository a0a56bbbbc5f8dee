"""Feature invariance (Zeiler and Fergus, section 4.1, figure 5): one upload shifted, rotated or scaled step by step,
and the same curves averaged over the test set (``python -m training analyze``)."""

import base64
import struct
import zlib
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.api.deps import AnyModelDep, Digit, Format, ModelDep, StatisticsDep
from service.api.error_responses import ERRORS, STATISTICS_ERRORS
from service.api.errors import NotFound, Unprocessable
from service.api.render import PNG, PNG_RESPONSE, json_response
from service.api.schemas import (
    InvarianceAverage,
    InvarianceCurves,
    InvarianceStatisticsAnswer,
    InvarianceTransformAverage,
)
from service.api.uploads import IMAGE_BODY
from service.contract import plot_name
from service.pictures.grids import to_uint8
from service.pictures.invariance_figure import invariance_png
from service.pictures.png import png_bytes
from service.runtime.imported import ImportedLoadedModel
from service.studies.forward_invariance import imported_invariance
from service.studies.invariance import DEFAULT_STEPS, MAX_STEPS, TRANSFORMS, invariance, transform_spec

router = APIRouter(prefix="/v1", tags=["invariance"])

TRANSFORM_TEXT = (
    "`shift-x` (px, positive: right; default -8..8, at most ±14), `shift-y` (px, positive: down; default -8..8, "
    "at most ±14), `rotate` (degrees, positive: counter-clockwise; default -60..60, at most ±180) or `scale` "
    "(factor; default 0.5..1.5, within 0.25..3)"
)
TransformName = Annotated[str, Query(description=TRANSFORM_TEXT)]


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


_PNG_HEAD = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
_PNG_END = _chunk(b"IEND", b"")


def _data_urls(images: np.ndarray) -> list[str]:
    """Each image in [0, 1] of ``images`` as a PNG data URL: (N, H, W) grey or (N, H, W, 3) colour. The shipped
    digits' 28x28 grey are written directly (below); other sizes and colour through ``png_bytes``.

    The pixel rows go into stored (level 0) deflate blocks: on 33 images of 800 bytes, compressing costs 1.4 ms
    (more than a tenth of the network's run) and saves about 15 % of a 50 kB answer. Through Pillow they took 8 ms.
    """
    if images.shape[1:] != (28, 28):
        return [
            "data:image/png;base64," + base64.b64encode(png_bytes(to_uint8(image, 0.0, 1.0))).decode("ascii")
            for image in images
        ]
    rows = np.zeros((len(images), 28, 29), np.uint8)  # filter byte 0 at the start of every row
    rows[:, :, 1:] = to_uint8(images, 0.0, 1.0)
    return [
        "data:image/png;base64,"
        + base64.b64encode(_PNG_HEAD + _chunk(b"IDAT", zlib.compress(image.tobytes(), 0)) + _PNG_END).decode("ascii")
        for image in rows
    ]


@router.post(
    "/invariance",
    response_model=InvarianceCurves,
    responses=ERRORS | PNG_RESPONSE,
    openapi_extra=IMAGE_BODY,
    summary="How the classifier's layers and answer move as the digit is shifted, rotated or scaled (Zeiler and "
    "Fergus, figure 5): JSON curves (default), or `format=png`, the figure's three panels for this digit. An "
    "imported model's input is transformed in its own size and colour (outside: its normalised black), and the "
    "distances are those of its every layer",
)
def invariance_curves(
    digit: Digit,
    model: AnyModelDep,
    transform: TransformName = "rotate",
    start: Annotated[float | None, Query(alias="from", description="first amount (default: the transform's)")] = None,
    stop: Annotated[float | None, Query(alias="to", description="last amount (default: the transform's)")] = None,
    steps: Annotated[int, Query(description=f"amounts from `from` to `to`, 2-{MAX_STEPS}")] = DEFAULT_STEPS,
    target: Annotated[int | None, Query(description="class to track (default: the predicted one)")] = None,
    format: Format = "json",
) -> Response:
    if isinstance(model, ImportedLoadedModel):
        result = imported_invariance(model, digit, transform, start, stop, steps, target)
    else:
        result = invariance(model, digit, transform, start, stop, steps, target)
    if format == "png":
        return Response(invariance_png(result, TRANSFORMS[result.transform].unit), media_type=PNG)
    return json_response(
        InvarianceCurves(
            model=model.name,
            transform=result.transform,
            unit=TRANSFORMS[result.transform].unit,
            target=result.target,
            amounts=result.amounts.tolist(),
            probability=result.probability.tolist(),
            predicted=result.predicted.tolist(),
            distance={layer: values.tolist() for layer, values in result.distance.items()},
            inputs=_data_urls(result.inputs),
        )
    )


@router.get(
    "/statistics/invariance",
    response_model=InvarianceStatisticsAnswer,
    responses=STATISTICS_ERRORS | PNG_RESPONSE,
    summary="The invariance curves averaged over the first test images, per transform and per digit; PNG (with "
    "`transform`): the three panels",
)
def invariance_statistics(
    statistics: StatisticsDep,
    model: ModelDep,
    transform: Annotated[str | None, Query(description="one transform (default: all; needed for PNG)")] = None,
    label: Annotated[int | None, Query(ge=0, le=9, description="one digit 0-9 (default: every digit)")] = None,
    format: Format = "json",
) -> Response:
    data = statistics.invariance()
    names = list(data.transforms) if transform is None else [transform]
    for name in names:
        transform_spec(name)
    if format == "png":
        if transform is None:
            raise Unprocessable(f"format=png draws one transform: add transform= ({', '.join(data.transforms)})")
        png = statistics.plot(plot_name("invariance", transform, label=label))
        if png is None:
            raise NotFound(
                f"these statistics have no plot of {transform} (the sweep analyses its variants without plots): "
                "ask for format=json"
            )
        return Response(png, media_type=PNG)
    answers = []
    for name in names:
        curves = data.transforms[name]
        digits = curves.digits if label is None else [curves.digits[label]]
        answers.append(
            InvarianceTransformAverage(
                transform=name,
                unit=curves.unit,
                amounts=curves.amounts,
                all=InvarianceAverage(**curves.all.model_dump()),
                digits=[InvarianceAverage(**group.model_dump()) for group in digits],
            )
        )
    return json_response(
        InvarianceStatisticsAnswer(
            model=model.name, split=statistics.data.split, images=data.images, label=label, transforms=answers
        )
    )
