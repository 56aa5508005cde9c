"""The gateway's FastAPI application."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from bot import staff_auth_views, views, ws
from bot.flows import ChatFlows
from bot.rasa_client import RasaClient
from tandem.bus import InProcessBus
from tandem.config import Settings, get_settings
from tandem.conversations.service import ConversationNotFound
from tandem.conversations.states import InvalidTransition
from tandem.db import make_engine
from tandem.models import Base  # noqa: F401  (registers every table for relationships)

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 64 * 1024


class BodySizeLimit(BaseHTTPMiddleware):
    """Refuse huge bodies before they are read (a message is at most a few KB)."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return JSONResponse(
                {"detail": f"Request body over {MAX_BODY_BYTES} bytes."}, status_code=413
            )
        return await call_next(request)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = engine or make_engine(settings.database_url)
    rasa = RasaClient(settings.rasa_url, settings.rasa_timeout_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await rasa.aclose()

    app = FastAPI(
        title="Tandem gateway",
        description="Customer chat API: conversations, messages, live WebSocket.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.flows = ChatFlows(engine, rasa, InProcessBus())
    app.add_middleware(BodySizeLimit)
    app.include_router(views.router)
    app.include_router(ws.router)
    app.include_router(staff_auth_views.router)

    @app.exception_handler(ConversationNotFound)
    async def _not_found(_: Request, error: ConversationNotFound) -> JSONResponse:
        return JSONResponse({"detail": "Unknown conversation."}, status_code=404)

    @app.exception_handler(InvalidTransition)
    async def _conflict(_: Request, error: InvalidTransition) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)

    @app.get("/healthz", tags=["ops"])
    async def health() -> dict[str, Any]:
        def database_ok() -> bool:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return True
            except Exception:
                logger.exception("database health check failed")
                return False

        database = await run_in_threadpool(database_ok)
        rasa_up = await rasa.is_healthy()
        return {
            "status": "ok" if database else "degraded",
            "database": "ok" if database else "down",
            "rasa": "up" if rasa_up else "down",
        }

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC / "chat.html", media_type="text/html")

    return app
