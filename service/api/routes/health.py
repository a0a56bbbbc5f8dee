"""Liveness and readiness, answered on the event loop: never queued behind work."""

from fastapi import APIRouter

from service.api.deps import RegistryDep
from service.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, summary="Models are loaded and verified (503 until then)")
async def readyz(registry: RegistryDep) -> Readiness:
    return Readiness(status="ready", models=list(registry.models))
