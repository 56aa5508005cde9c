"""The gateway's FastAPI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from bot import (
    canned_views,
    logredact,
    owner_views,
    pages,
    privacy_views,
    staff_auth_views,
    staff_views,
    staff_ws,
    views,
    ws,
)
from bot.customer_auth import TOKEN_HEADER
from bot.desk import DeskError, HandoffDesk
from bot.edge import EdgeInput
from bot.flows import ChatFlows
from bot.rasa_client import RasaClient
from bot.schemas import MessageRejected
from bot.scoring import SentimentBatcher
from handoff.factory import make_queue
from handoff.policy import load_policy
from tandem.abuse.service import AbuseLimits, RateLimited
from tandem.bus import make_bus
from tandem.business.profile import load_profile
from tandem.config import DEMO_IDENTITY_SECRET, Settings, get_settings
from tandem.conversations.service import ConversationNotFound
from tandem.conversations.states import InvalidTransition
from tandem.db import make_engine, utcnow
from tandem.models import Base  # noqa: F401  (registers every table for relationships)
from tandem.privacy.retention import retention_loop

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    scorer: SentimentBatcher | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The gateway. `scorer` and `clock` are for tests (a fake model, a fixed time)."""
    settings = settings or get_settings()
    logredact.install()
    if settings.identity_secret == DEMO_IDENTITY_SECRET and not settings.database_url.startswith(
        "sqlite"
    ):
        logger.warning(
            "IDENTITY_SECRET is the public demo default: anyone can forge signed customer "
            "identities. Set IDENTITY_SECRET to a long random value, e.g. "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'."
        )
    engine = engine or make_engine(settings.database_url)
    rasa = RasaClient(settings.rasa_url, settings.rasa_timeout_seconds)
    # Read the owner's files now: a mistake in them stops the start with a clear message.
    policy = load_policy(settings.handoff_file)
    load_profile(settings.business_file)
    # With REDIS_URL, the queue and the bus are shared by every gateway process.
    bus = make_bus(settings.redis_url, settings.redis_prefix)
    queue = make_queue(
        settings.redis_url,
        settings.redis_prefix,
        presence_ttl_seconds=settings.staff_presence_ttl_seconds,
    )
    scorer = scorer or SentimentBatcher(
        enabled=settings.sentiment_enabled,
        max_batch=settings.sentiment_batch_size,
        max_wait_seconds=settings.sentiment_batch_wait_ms / 1000,
    )
    desk = HandoffDesk(
        engine,
        rasa,
        bus,
        queue,
        profile=lambda: load_profile(settings.business_file),
        staff_hours=settings.staff_hours,
        assignment=settings.handoff_assignment,
        clock=clock,
    )

    async def announce_overdue() -> None:
        while True:
            await asyncio.sleep(settings.sla_check_seconds)
            try:
                await desk.announce_overdue(settings.queue_sla_seconds)
            except Exception:
                logger.exception("the SLA check failed; trying again later")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        warm_up = asyncio.create_task(scorer.warm_up())
        try:
            restored = await desk.resync()
            if restored:
                logger.info("put %d queued conversation(s) back in the queue", restored)
        except Exception:
            logger.exception("could not resync the handoff queue with the database")
        sla = asyncio.create_task(announce_overdue())
        retention = asyncio.create_task(retention_loop(engine, settings))
        yield
        for task in (sla, warm_up, retention):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Scores that came after their turn are stored before the model goes away.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(app.state.flows.wait_for_late_scores(), timeout=10)
        scorer.close()
        await rasa.aclose()
        await queue.close()
        close_bus = getattr(bus, "close", None)
        if close_bus is not None:
            await close_bus()

    app = FastAPI(
        title="Tandem gateway",
        description="Customer chat API: conversations, messages, live WebSocket.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.desk = desk
    app.state.scorer = scorer
    app.state.limits = AbuseLimits(settings)
    app.state.flows = ChatFlows(
        engine, rasa, bus, desk, scorer, policy, policy_file=settings.handoff_file
    )
    app.add_middleware(EdgeInput)
    # The widget on the business's own site calls the customer API cross-origin; no
    # cookies are involved (the conversation's id and token are the widget's credential).
    if settings.allowed_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", TOKEN_HEADER],
            allow_credentials=False,
        )
    app.include_router(views.router)
    app.include_router(ws.router)
    app.include_router(staff_auth_views.router)
    app.include_router(staff_views.router)
    app.include_router(staff_ws.router)
    app.include_router(canned_views.router)
    app.include_router(owner_views.router)
    app.include_router(privacy_views.router)
    app.include_router(pages.router)

    @app.exception_handler(DeskError)
    async def _desk_error(_: Request, error: DeskError) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status)

    @app.exception_handler(MessageRejected)
    async def _rejected(_: Request, error: MessageRejected) -> JSONResponse:
        return JSONResponse({"detail": error.detail}, status_code=error.status_code)

    @app.exception_handler(ConversationNotFound)
    async def _not_found(_: Request, error: ConversationNotFound) -> JSONResponse:
        return JSONResponse({"detail": "Unknown conversation."}, status_code=404)

    @app.exception_handler(RateLimited)
    async def _rate_limited(_: Request, error: RateLimited) -> JSONResponse:
        return JSONResponse(
            {"detail": error.detail, "retry_after": error.retry_after},
            status_code=429,
            headers={"Retry-After": str(error.retry_after)},
        )

    @app.exception_handler(OverflowError)
    async def _overflow(_: Request, error: OverflowError) -> JSONResponse:
        # A number the database cannot hold (SQLite stops at 2**63): bad input, not a crash.
        return JSONResponse({"detail": "A number in the request is out of range."}, 422)

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
            # ok, not_loaded (until the first message or warm-up), unavailable, disabled
            "sentiment": app.state.scorer.status,
        }

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return FileResponse(STATIC / "chat.html", media_type="text/html")

    return app
