"""The models the service serves (the shipped ones and any trained variants): layers, parameters, configuration,
metrics and training history."""

from fastapi import APIRouter

from service.api.deps import RegistryDep, find_model
from service.api.error_responses import LOOKUP_ERRORS
from service.api.schemas import Layer, ModelDetail, ModelList, ModelSummary
from service.runtime.registry import LoadedModel

router = APIRouter(prefix="/v1/models", tags=["models"], responses=LOOKUP_ERRORS)


def _summary(model: LoadedModel) -> ModelSummary:
    entry = model.entry
    return ModelSummary(
        name=model.name,
        layers=list(model.layer_shapes),
        total_params=entry.total_params,
        metrics=entry.metrics,
        training=entry.training,
    )


@router.get("", response_model=ModelList, summary="List the models")
def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[_summary(model) for model in registry.models.values()])


@router.get("/{model}", response_model=ModelDetail, summary="One model: layers, totals, metrics, history")
def model_detail(registry: RegistryDep, model: str) -> ModelDetail:
    loaded = find_model(registry, model)
    entry = loaded.entry
    exposed = set(loaded.layer_shapes)
    return ModelDetail(
        **_summary(loaded).model_dump(),
        layer_details=[Layer(**layer.model_dump(), exposed=layer.name in exposed) for layer in entry.layers],
        history=entry.history,
        sha256=entry.sha256,
        opset=entry.opset,
    )
