"""Classification of uploaded digits: one image, or a batch in one request (``service.studies.classification``)."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import AnyModelDep, Batch, Digit, judge_of
from service.api.error_responses import ERRORS
from service.api.render import document_response
from service.api.schemas import BatchClassification, Classification
from service.api.uploads import BATCH_BODY, IMAGE_BODY
from service.studies import classification
from service.studies.classification import shipped_classifier

router = APIRouter(prefix="/v1", tags=["classify"], responses=ERRORS)
Top = Annotated[
    int | None,
    Query(
        description="list the `top` most probable classes with their labels (an imported model lists all up to 10 "
        "unless told; a shipped model lists none unless told)"
    ),
]


@router.post(
    "/classify",
    response_model=Classification,
    summary="Classify a digit, and judge whether it is one (`digit_like`)",
    openapi_extra=IMAGE_BODY,
)
async def classify(digit: Digit, model: AnyModelDep, request: Request, top: Top = None) -> Response:
    judge = judge_of(request, model)
    batchers, alone = request.app.state.batchers, request.app.state.in_flight.alone()
    if batchers is not None and not alone and top is None and shipped_classifier(model):  # a shared run
        outputs = await asyncio.wrap_future(batchers.of(model).submit(digit, classification.outputs_for(model, judge)))
        answer = classification.Classification(digit, outputs, judge).answers()[0]
    else:
        # one image runs on the event loop when an inference slot is free (cheaper than a thread hop)
        classified = classification.classify(model, digit, judge, now=True, top=top) or await run_in_threadpool(
            lambda: classification.classify(model, digit, judge, top=top)
        )
        answer = classified.answers()[0]
    return document_response({"model": model.name, **answer})  # a Classification, built as plain values


@router.post(
    "/classify/batch",
    response_model=BatchClassification,
    openapi_extra=BATCH_BODY,
    summary="Classify many digits in one request (multipart files or a .npy array), in input order",
)
def classify_batch(images: Batch, model: AnyModelDep, request: Request, top: Top = None) -> Response:
    answers = classification.classify(model, images, judge_of(request, model), top=top).answers()
    # a BatchClassification, built as plain values: 1,000 models cost more than their JSON
    return document_response({"model": model.name, "count": len(answers), "results": answers})
