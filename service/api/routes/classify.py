"""Classification of uploaded digits: one image, or a batch in one request (``service.studies.classification``)."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import Batch, Digit, ModelDep, judge_of
from service.api.error_responses import ERRORS
from service.api.render import document_response
from service.api.schemas import BatchClassification, Classification
from service.api.uploads import BATCH_BODY, IMAGE_BODY
from service.studies import classification

router = APIRouter(prefix="/v1", tags=["classify"], responses=ERRORS)


@router.post(
    "/classify",
    response_model=Classification,
    summary="Classify a digit, and judge whether it is one (`digit_like`)",
    openapi_extra=IMAGE_BODY,
)
async def classify(digit: Digit, model: ModelDep, request: Request) -> Response:
    batcher = request.app.state.batcher
    if batcher is not None and batcher.model is model:  # no thread waits: the batcher's own thread classifies it
        answer = await asyncio.wrap_future(batcher.submit(digit))
    else:
        judge = judge_of(request, model)
        # one image runs on the event loop when an inference slot is free (cheaper than a thread hop)
        classified = classification.classify(model, digit, judge, now=True) or await run_in_threadpool(
            classification.classify, model, digit, judge
        )
        answer = classified.answers()[0]
    return document_response({"model": model.name, **answer})  # a Classification, built as plain values


@router.post(
    "/classify/batch",
    response_model=BatchClassification,
    openapi_extra=BATCH_BODY,
    summary="Classify many digits in one request (multipart files or a .npy array), in input order",
)
def classify_batch(images: Batch, model: ModelDep, request: Request) -> Response:
    answers = classification.classify(model, images, judge_of(request, model)).answers()
    # a BatchClassification, built as plain values: 1,000 models cost more than their JSON
    return document_response({"model": model.name, "count": len(answers), "results": answers})
