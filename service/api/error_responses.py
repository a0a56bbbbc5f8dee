"""The error responses the /v1 routers document in OpenAPI (the JSON shape is ``schemas.ErrorResponse``)."""

from service.api.schemas import ErrorResponse


def _errors(*pairs: tuple[int, str]) -> dict:
    return {status: {"model": ErrorResponse, "description": text} for status, text in pairs}


UNAUTHORIZED = (401, "API keys are configured and the request carries none of them")
BUSY = (503, "every inference slot stayed busy, or the request timed out (see Retry-After)")
LOOKUP_ERRORS = _errors(UNAUTHORIZED, (404, "unknown model or layer"))
ERRORS = _errors(
    (400, "undecodable image or malformed request"),
    UNAUTHORIZED,
    (404, "unknown model or layer"),
    (413, "upload or image dimensions over the limit"),
    (415, "not an accepted image format or content type"),
    (422, "invalid parameter, filter out of range, or no digit in the image"),
    BUSY,
)
STATISTICS_ERRORS = _errors(
    UNAUTHORIZED,
    (404, "unknown layer or model"),
    (422, "invalid parameter (label outside 0-9, unknown rule, filter out of range)"),
    (503, "no dataset statistics (run `python -m training analyze`), or they do not match the served model"),
)
EVOLUTION_ERRORS = _errors(
    UNAUTHORIZED,
    (404, "unknown layer or model, or a model whose training was not recorded"),
    (422, "invalid parameter (filter out of range, scale)"),
    (503, "the recording is missing or changed (run `python -m training train --only classifier`)"),
)
