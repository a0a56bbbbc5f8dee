"""Classification of uploaded digits: one image, or a batch in one request."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from service.api.deps import Batch, Digit, ModelDep, judge_fields, judge_of, judge_outputs
from service.api.error_responses import ERRORS
from service.api.render import document_response, json_response
from service.api.schemas import BatchClassification, Classification
from service.api.uploads import BATCH_BODY, IMAGE_BODY
from service.runtime.registry import LoadedModel
from service.studies.layers import require_classifier

router = APIRouter(prefix="/v1", tags=["classify"], responses=ERRORS)


def _classified(
    request: Request, model: LoadedModel, images, now: bool = False
) -> tuple[list[list[float]], list[dict]] | None:
    """Each image's probabilities and the digit judge's fields (its score, or the dense1 it needs, from the same run).
    With ``now``, only if the model runs it at once on this thread (``LoadedModel.run_now``), else None."""
    require_classifier(model)
    judge = judge_of(request, model)
    names = judge_outputs(model, judge)
    outputs = model.run_now(images, names) if now else model.run(images, names)
    if outputs is None:
        return None
    return outputs["output"].tolist(), judge_fields(judge, images, outputs)


@router.post(
    "/classify",
    response_model=Classification,
    summary="Classify a digit, and judge whether it is one (`digit_like`)",
    openapi_extra=IMAGE_BODY,
)
async def classify(digit: Digit, model: ModelDep, request: Request) -> Response:
    batcher = request.app.state.batcher
    if batcher is not None and batcher.model is model:  # no thread waits: the batcher's own thread runs it
        row = await asyncio.wrap_future(batcher.submit(digit))
        outputs = {name: values[None] for name, values in row.items()}
        probabilities, judged = outputs["output"][0].tolist(), judge_fields(judge_of(request, model), digit, outputs)
    else:
        # one image runs on the event loop when an inference slot is free (cheaper than a thread hop)
        rows, judged = _classified(request, model, digit, now=True) or await run_in_threadpool(
            _classified, request, model, digit
        )
        probabilities = rows[0]
    return json_response(
        Classification(
            model=model.name,
            digit=probabilities.index(max(probabilities)),
            probabilities=probabilities,
            **judged[0],
        )
    )


@router.post(
    "/classify/batch",
    response_model=BatchClassification,
    openapi_extra=BATCH_BODY,
    summary="Classify many digits in one request (multipart files or a .npy array), in input order",
)
def classify_batch(images: Batch, model: ModelDep, request: Request) -> Response:
    rows, judged = _classified(request, model, images)
    return document_response(  # a BatchClassification, built as plain values: 1,000 models cost more than their JSON
        {
            "model": model.name,
            "count": len(rows),
            "results": [
                {"digit": row.index(max(row)), "probabilities": row, **fields} for row, fields in zip(rows, judged)
            ],
        }
    )
