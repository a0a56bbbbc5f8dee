"""The interactive API documentation at ``/docs`` (Swagger UI), its script, style and icon served by this service, so
that it works without internet. The files come from the ``fastapi-offline`` package, pinned exactly in
constraints.txt: Swagger UI 5, which reads the OpenAPI 3.1 document FastAPI writes. There is no ``/redoc``: ReDoc
loads its logo from its makers' CDN even when its script is served here."""

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

ASSETS = Path(str(files("fastapi_offline") / "static"))
ASSETS_URL = "/docs/assets"
MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
# The files change only with the pinned package: revalidate (ETag / Last-Modified) rather than download again.
HEADERS = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["docs"], include_in_schema=False)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI: try every endpoint from the browser. URLs are under the app's root path (behind a proxy)."""
    root = request.scope.get("root_path", "").rstrip("/")
    assets = f"{root}{ASSETS_URL}"
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
        swagger_ui_parameters=request.app.swagger_ui_parameters,
    )
    page.headers["Content-Security-Policy"] = content_security_policy(page.body.decode())
    return page


def content_security_policy(html: str) -> str:
    """Only this origin's scripts, styles, images and API calls; the page's one inline script allowed by its hash."""
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline)
    return (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def _asset(path: Path):
    def serve() -> FileResponse:
        return FileResponse(path, media_type=MEDIA_TYPES[path.name], headers=HEADERS)

    return serve


for _name in MEDIA_TYPES:
    router.add_api_route(f"{ASSETS_URL}/{_name}", _asset(ASSETS / _name), methods=["GET"], summary=_name)
