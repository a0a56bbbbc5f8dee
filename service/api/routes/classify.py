"""Classification of uploaded digits: one image, or a batch in one request."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import Batch, Digit, ModelDep
from service.api.error_responses import ERRORS
from service.api.render import json_response
from service.api.schemas import BatchClassification, BatchItem, Classification
from service.api.uploads import BATCH_BODY, IMAGE_BODY
from service.inference import require_classifier
from service.registry import LoadedModel

router = APIRouter(prefix="/v1", tags=["classify"], responses=ERRORS)


def _probabilities(model: LoadedModel, images) -> list[list[float]]:
    require_classifier(model)
    return model.run(images, ["output"])["output"].tolist()


@router.post("/classify", response_model=Classification, summary="Classify a digit", openapi_extra=IMAGE_BODY)
async def classify(digit: Digit, model: ModelDep, request: Request) -> Response:
    batcher = request.app.state.batcher
    if batcher is not None and batcher.model is model:  # no thread waits: the batcher's own thread runs it
        probabilities = (await asyncio.wrap_future(batcher.submit(digit))).tolist()
    else:
        probabilities = (await run_in_threadpool(_probabilities, model, digit))[0]
    return json_response(
        Classification(model=model.name, digit=probabilities.index(max(probabilities)), probabilities=probabilities)
    )


@router.post(
    "/classify/batch",
    response_model=BatchClassification,
    openapi_extra=BATCH_BODY,
    summary="Classify many digits in one request (multipart files or a .npy array), in input order",
)
def classify_batch(images: Batch, model: ModelDep) -> Response:
    rows = _probabilities(model, images)
    return json_response(
        BatchClassification(
            model=model.name,
            count=len(rows),
            results=[BatchItem(digit=row.index(max(row)), probabilities=row) for row in rows],
        )
    )
