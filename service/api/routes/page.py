"""The web page at ``/``: static files from ``service/static`` (no build step), open even when API keys are on —
the page itself sends the key the user enters with each API call."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from service.attribution import METHODS

STATIC = Path(__file__).resolve().parents[1] / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The page's own files only: no inline script or style, images from the API as data: or blob: URLs, and calls to
# this service or to the API base URL the user chose.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self' http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Revalidate on every load (cheap: ETag / Last-Modified), so a new release is never mixed with a cached old file.
HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY}

router = APIRouter(tags=["page"], include_in_schema=False)


def _serve(path: Path):
    async def serve() -> FileResponse:
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)

    return serve


# The Explain panel's first choice (the others in the registry's order).
FIRST_METHOD = "integrated-gradients"


async def attribution_methods() -> JSONResponse:
    """The Explain panel's menu, read from the methods themselves: each method's name, what people call it, its
    note and whether its maps are signed (a method added to ``service.attribution`` appears on the page)."""
    methods = [
        {
            "name": method.name,
            "title": method.title or method.name,
            "text": method.text,
            "signed": method.signed,
            "selected": method.name == FIRST_METHOD,
        }
        for method in METHODS.values()
    ]
    return JSONResponse({"methods": methods}, headers=HEADERS)


# The files sit side by side at the root and refer to each other relatively, so the same folder also works
# when hosted anywhere else (then open it with ?api=<this service's URL>).
router.add_api_route("/", _serve(STATIC / "index.html"), methods=["GET"], summary="The web page")
router.add_api_route("/attribution-methods.json", attribution_methods, methods=["GET"], summary="The Explain menu")
PATHS = {"/", "/attribution-methods.json"}
for _file in sorted(STATIC.iterdir()):
    if _file.suffix in MEDIA_TYPES and _file.is_file():
        router.add_api_route(f"/{_file.name}", _serve(_file), methods=["GET"], summary=_file.name)
        PATHS.add(f"/{_file.name}")
