"""Which filters of a layer are active for one uploaded image (the paper's norm-above-mean rule by default), for a
shipped or an imported model."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.deps import AnyModelDep, DatasetThreshold, Digit, Norm, layer_rule
from service.api.error_responses import ERRORS
from service.api.render import json_response
from service.api.schemas import ActiveFilters
from service.api.uploads import IMAGE_BODY
from service.studies.layers import channels_last, layer_activity, spatial_layer

router = APIRouter(prefix="/v1/active-filters", tags=["active filters"], responses=ERRORS)


@router.post(
    "/{layer}",
    response_model=ActiveFilters,
    openapi_extra=IMAGE_BODY,
    summary="Feature-map norms and the filters whose norm is above the threshold",
)
def layer_active_filters(
    layer: str, digit: Digit, model: AnyModelDep, request: Request, rule: DatasetThreshold = "mean", norm: Norm = "l2"
) -> Response:
    spatial_layer(model, layer)
    fixed = layer_rule(request, model, layer, norm, rule)
    activity = layer_activity(channels_last(model, model.run(digit, [layer])[layer][0]), norm, fixed)
    return json_response(
        ActiveFilters(
            model=model.name,
            layer=layer,
            norm=norm,
            threshold_rule=str(rule),
            threshold=activity.threshold,
            norms=activity.norms.tolist(),
            active=activity.active,
        )
    )
