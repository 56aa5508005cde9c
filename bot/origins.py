"""Which websites may talk to the customer API: the widget's allowed origins.

Browsers send `Origin` on cross-site requests and on every WebSocket upgrade. CORS
covers the HTTP API (CORSMiddleware in bot/app.py); WebSockets have no CORS, so the chat
socket checks the origin itself with `origin_allowed`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from tandem.config import Settings

CLOSE_FORBIDDEN_ORIGIN = 4403


def same_site(origin: str, connection: HTTPConnection) -> bool:
    host = connection.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


def origin_allowed(connection: HTTPConnection, settings: Settings) -> bool:
    """No Origin (not a browser), our own pages, or a listed site; "*" allows all."""
    origin = connection.headers.get("origin")
    if not origin:
        return True
    allowed = settings.allowed_origins
    return "*" in allowed or origin.rstrip("/") in allowed or same_site(origin, connection)
