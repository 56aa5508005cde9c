"""The product's pages: the customer widget and demo shop, the staff console, the owner
dashboard. Static files with no build step; each page talks to the JSON APIs.

The pages themselves are public (they hold no data); the APIs behind them check the
session and role on every request.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC = Path(__file__).resolve().parent / "static"
# Swagger UI's own files, from the fastapi-offline package (only its assets are used).
SWAGGER_ASSETS = Path(str(files("fastapi_offline") / "static"))
_SWAGGER_FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}

router = APIRouter(include_in_schema=False)

# Pages must not be framed by other sites (clickjacking), nor sniffed into another type.
_PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self' ws: wss:; frame-ancestors 'none'"
    ),
}


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/widget.js")
async def widget_script() -> FileResponse:
    # Loaded by other sites' pages: cacheable for a short while, never framed.
    return FileResponse(
        STATIC / "widget.js",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/static/{name}")
async def static_asset(name: str) -> FileResponse:
    """Scripts and styles of the pages (one folder, no sub-paths)."""
    allowed = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    path = STATIC / name
    suffix = path.suffix
    if "/" in name or name.startswith(".") or suffix not in allowed or not path.is_file():
        raise HTTPException(status_code=404, detail="Not found.")
    return FileResponse(
        path, media_type=allowed[suffix], headers={"X-Content-Type-Options": "nosniff"}
    )


@router.get("/favicon.ico")
async def favicon() -> FileResponse:
    return FileResponse(
        STATIC / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/")
async def chat_page() -> FileResponse:
    """The standalone chat page (the widget's conversation, full screen)."""
    return _page("chat.html")


@router.get("/docs")
async def api_docs() -> FileResponse:
    """Swagger UI for /openapi.json, with no file from outside the gateway."""
    return _page("docs.html")


@router.get("/docs/assets/{name}")
async def api_docs_asset(name: str) -> FileResponse:
    if name not in _SWAGGER_FILES:
        raise HTTPException(status_code=404, detail="Not found.")
    return FileResponse(
        SWAGGER_ASSETS / name,
        media_type=_SWAGGER_FILES[name],
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/demo")
async def demo_shop() -> FileResponse:
    """A demo shop page with the widget embedded by one <script> tag."""
    return _page("demo.html")


@router.get("/staff")
async def staff_console() -> FileResponse:
    """The staff console; it shows the login form until the session is valid."""
    return _page("staff.html")


@router.get("/owner")
async def owner_dashboard() -> FileResponse:
    """The owner's dashboard; it shows the login form until an owner session is valid."""
    return _page("owner.html")
