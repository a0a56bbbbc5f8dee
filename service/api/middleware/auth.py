"""Optional API keys: when ``CONVLENS_API_KEYS`` is set, every /v1 route needs one of them."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header

from service.api.deps import SettingsDep
from service.api.errors import ApiError


def _offered_key(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


async def require_api_key(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """401 unless keys are off or the request carries a configured key (compared in constant time)."""
    if not settings.api_keys:
        return
    offered = _offered_key(authorization, x_api_key)
    matched = False
    for key in settings.api_keys:
        matched |= offered is not None and hmac.compare_digest(offered.encode(), key.encode())
    if not matched:
        raise ApiError(
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
