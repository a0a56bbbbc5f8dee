"""The models the service serves (the shipped ones, any trained variants and the imported ones): layers,
parameters, configuration, metrics and training history; for an imported model its input, preprocessing, labels,
layers with their ops and what it can be asked."""

from fastapi import APIRouter

from service.api.capabilities import capabilities
from service.api.deps import AnyModel, RegistryDep, find_served
from service.api.error_responses import LOOKUP_ERRORS
from service.api.schemas import Capabilities, ImportedModelDetail, Layer, ModelDetail, ModelList, ModelSummary
from service.runtime.imported import ImportedLoadedModel
from service.runtime.registry import LoadedModel
from service.studies.any_model_explain import gradient_methods_of

router = APIRouter(prefix="/v1/models", tags=["models"], responses=LOOKUP_ERRORS)


def _summary(model: AnyModel) -> ModelSummary:
    if isinstance(model, ImportedLoadedModel):
        return ModelSummary(
            name=model.name,
            kind="imported",
            layers=list(model.layer_shapes),
            total_params=None,
            metrics={},
            training={},
        )
    entry = model.entry
    return ModelSummary(
        name=model.name,
        layers=list(model.layer_shapes),
        total_params=entry.total_params,
        metrics=entry.metrics,
        training=entry.training,
    )


def _imported_detail(model: ImportedLoadedModel) -> ImportedModelDetail:
    manifest = model.manifest
    return ImportedModelDetail(
        **_summary(model).model_dump(),
        input=manifest.input.model_dump(),
        preprocessing=manifest.preprocessing.model_dump(),
        labels=manifest.labels,
        outputs_logits=manifest.outputs_logits,
        layer_details=[layer.model_dump(exclude={"tensor"}) for layer in manifest.layers],
        capabilities=Capabilities(**capabilities(*gradient_methods_of(model))),
        sha256=manifest.source.sha256,
        opset=manifest.opset,
        forward_ms=manifest.forward_ms,
        cost=model.cost,
        memory_bytes=model.memory_bytes,
    )


def _shipped_detail(loaded: LoadedModel) -> ModelDetail:
    entry = loaded.entry
    exposed = set(loaded.layer_shapes)
    return ModelDetail(
        **_summary(loaded).model_dump(),
        layer_details=[Layer(**layer.model_dump(), exposed=layer.name in exposed) for layer in entry.layers],
        history=entry.history,
        sha256=entry.sha256,
        opset=entry.opset,
    )


@router.get("", response_model=ModelList, summary="List the models (shipped, then imported)")
def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[_summary(model) for model in (*registry.models.values(), *registry.imported.values())])


@router.get(
    "/{model}",
    response_model=ModelDetail | ImportedModelDetail,
    summary="One model: layers, totals, metrics, history; for an imported model its input, preprocessing, labels, "
    "layers with their ops and capabilities",
)
def model_detail(registry: RegistryDep, model: str) -> ModelDetail | ImportedModelDetail:
    loaded = find_served(registry, model)
    if isinstance(loaded, ImportedLoadedModel):
        return _imported_detail(loaded)
    return _shipped_detail(loaded)
