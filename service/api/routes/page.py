"""The web page at ``/``: static files from ``service/static`` (no build step), open even when API keys are on —
the page itself sends the key the user enters with each API call."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parents[1] / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Revalidate on every load (cheap: ETag / Last-Modified), so a new release is never mixed with a cached old file.
HEADERS = {"Cache-Control": "no-cache"}

router = APIRouter(tags=["page"], include_in_schema=False)


def _serve(path: Path):
    def serve() -> FileResponse:
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=HEADERS)

    return serve


# The files sit side by side at the root and refer to each other relatively, so the same folder also works
# when hosted anywhere else (then open it with ?api=<this service's URL>).
router.add_api_route("/", _serve(STATIC / "index.html"), methods=["GET"], summary="The web page")
for _file in sorted(STATIC.iterdir()):
    if _file.suffix in MEDIA_TYPES and _file.is_file():
        router.add_api_route(f"/{_file.name}", _serve(_file), methods=["GET"], summary=_file.name)
