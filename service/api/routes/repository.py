"""Triton's model repository extension over the imported models: the index of ``models/imported/`` and, with
``CONVLENS_MODEL_CONTROL=explicit``, loading and unloading them while the service runs (``none``, the default:
what the folder held at start-up is served, and load and unload answer 400 as Triton does without explicit
control). The shipped models are always served and are listed READY."""

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from service.api.deps import RegistryDep, SettingsDep
from service.api.errors import ApiError
from service.api.v2_tensors import InferenceError
from service.runtime.imported import Repository
from service.runtime.registry import Registry

ERRORS = {
    400: {"model": InferenceError, "description": "model control is none, or the model cannot be loaded (why)"},
    401: {"model": InferenceError, "description": "API keys are configured and the request carries none of them"},
    503: {"model": InferenceError, "description": "the models are not loaded yet (see Retry-After)"},
}
router = APIRouter(prefix="/v2/repository", tags=["open inference protocol (KServe v2)"], responses=ERRORS)


class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ready: bool = Field(False, description="list only the models ready for inference")


class ControlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    parameters: dict[str, Any] | None = Field(None, description="accepted and ignored (no parameter applies)")


class IndexEntry(BaseModel):
    name: str = Field(examples=["mnist-cnn"])
    version: str = Field(examples=["1"])
    state: str = Field(description="READY or UNAVAILABLE", examples=["READY"])
    reason: str | None = Field(None, description="why a model is UNAVAILABLE")


def repository(registry: Registry) -> Repository:
    """The repository of imported models, the one owner of what the registry serves of them."""
    return registry.repository


def _controlled(settings: SettingsDep, name: str, registry: RegistryDep) -> None:
    if settings.model_control != "explicit":
        raise ApiError(
            "explicit model load / unload is not allowed: CONVLENS_MODEL_CONTROL is none (the models in the folder "
            "at start-up are served); set CONVLENS_MODEL_CONTROL=explicit",
            status=400,
        )
    if name in registry.models:
        raise ApiError(f"{name!r} is a shipped model, always served; load and unload apply to imported models", 400)


@router.post(
    "/index",
    response_model=list[IndexEntry],
    response_model_exclude_none=True,
    summary="v2 repository: every model and its state",
)
def index(registry: RegistryDep, body: Annotated[IndexRequest | None, Body()] = None) -> list[dict]:
    shipped = [{"name": name, "version": "1", "state": "READY"} for name in registry.models]
    return shipped + repository(registry).index(ready_only=bool(body and body.ready))


@router.post("/models/{model_name}/load", summary="v2 repository: load (or reload) an imported model")
async def load(
    model_name: str,
    registry: RegistryDep,
    settings: SettingsDep,
    body: Annotated[ControlRequest | None, Body()] = None,
) -> Response:
    _controlled(settings, model_name, registry)
    await run_in_threadpool(repository(registry).load, model_name)
    return Response(status_code=200)


@router.post("/models/{model_name}/unload", summary="v2 repository: stop serving an imported model")
async def unload(
    model_name: str,
    registry: RegistryDep,
    settings: SettingsDep,
    body: Annotated[ControlRequest | None, Body()] = None,
) -> Response:
    _controlled(settings, model_name, registry)
    repository(registry).unload(model_name)
    return Response(status_code=200)
