"""Liveness and readiness."""

from fastapi import APIRouter

from service.api.deps import RegistryDep
from service.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, summary="Models are loaded and verified (503 until then)")
def readyz(registry: RegistryDep) -> Readiness:
    return Readiness(status="ready", models=list(registry.models))
