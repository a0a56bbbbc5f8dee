"""Which filters of a layer are active for one uploaded digit (the paper's norm-above-mean rule by default)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.deps import DatasetThreshold, Digit, ModelDep, Norm, layer_rule, spatial_layer
from service.featuremaps.norms import active_filters, feature_map_norms, threshold
from service.render import json_response
from service.routes.common import ERRORS
from service.schemas import ActiveFilters
from service.uploads import IMAGE_BODY

router = APIRouter(prefix="/v1/active-filters", tags=["active filters"], responses=ERRORS)


@router.post("/{layer}", response_model=ActiveFilters, openapi_extra=IMAGE_BODY,
             summary="Feature-map norms and the filters whose norm is above the threshold")
def layer_active_filters(layer: str, digit: Digit, model: ModelDep, request: Request, rule: DatasetThreshold = "mean",
                         norm: Norm = "l2") -> Response:
    spatial_layer(model, layer)
    fixed = layer_rule(request, model, layer, norm, rule)
    norms = feature_map_norms(model.run(digit, [layer])[layer][0], norm)
    cut = threshold(norms, fixed)
    return json_response(ActiveFilters(model=model.name, layer=layer, norm=norm, threshold_rule=str(rule),
                                       threshold=cut, norms=norms.tolist(), active=active_filters(norms, cut)))
