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
from fastapi.responses import JSONResponse
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
    ticket_views,
    views,
    ws,
)
from bot.customer_auth import TOKEN_HEADER
from bot.edge import EdgeInput
from bot.rasa_client import RasaClient
from bot.schemas import MessageRejected
from handoff.factory import make_queue
from handoff.policy import load_policy
from handoff.queue import HandoffQueue
from tandem.abuse.service import AbuseLimits, RateLimited
from tandem.bus import EventBus, make_bus
from tandem.business.profile import BusinessProfile, load_profile
from tandem.config import DEMO_IDENTITY_SECRET, Settings, get_settings
from tandem.conversations.assistant import Assistant
from tandem.conversations.effects import Publisher
from tandem.conversations.flow import ChatFlows
from tandem.conversations.service import ConversationNotFound
from tandem.conversations.states import InvalidTransition
from tandem.db import make_engine, utcnow
from tandem.desk import AvailabilityService, Conflict, DeskError, HandoffDesk, NotHolder
from tandem.models import Base  # noqa: F401  (registers every table for relationships)
from tandem.privacy.retention import retention_loop
from tandem.scoring import SentimentBatcher

logger = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


# How the views answer a desk refusal.
DESK_ERROR_STATUS: dict[type[DeskError], int] = {Conflict: 409, NotHolder: 403}


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    assistant: Assistant | None = None,
    scorer: SentimentBatcher | None = None,
    clock: Callable[[], datetime] = utcnow,
    bus: EventBus | None = None,
    queue: HandoffQueue | None = None,
) -> FastAPI:
    """The gateway, with its collaborators injected (tests pass their own: an assistant
    that answers from a script, a scorer with a small model, a fixed clock); each one left
    out is built from the settings."""
    settings = settings or get_settings()
    logredact.install()
    if settings.identity_secret == DEMO_IDENTITY_SECRET:
        # Only reachable with ALLOW_DEMO_SECRET on; whatever the database.
        logger.warning(
            "IDENTITY_SECRET is the public demo value (ALLOW_DEMO_SECRET is on): anyone can "
            "forge signed customer identities. Unset both to use a generated secret."
        )
    # An engine made here is the app's to close at shutdown; a caller's stays the caller's.
    owns_engine = engine is None
    engine = engine or make_engine(settings.database_url)
    rasa: Assistant = assistant or RasaClient(
        settings.rasa_url, settings.rasa_timeout_seconds, token=settings.rasa_auth_token
    )
    # Read the owner's files now: a mistake in them stops the start with a clear message.
    policy = load_policy(settings.handoff_file)
    load_profile(settings.business_file)
    # With REDIS_URL, the queue and the bus are shared by every gateway process.
    bus = bus or make_bus(settings.redis_url, settings.redis_prefix)
    queue = queue or make_queue(
        settings.redis_url,
        settings.redis_prefix,
        presence_ttl_seconds=settings.staff_presence_ttl_seconds,
    )
    publisher = Publisher(bus)

    def profile() -> BusinessProfile:
        return load_profile(settings.business_file)  # re-read: the owner may edit it
    scorer = scorer or SentimentBatcher(
        enabled=settings.sentiment_enabled,
        max_batch=settings.sentiment_batch_size,
        max_wait_seconds=settings.sentiment_batch_wait_ms / 1000,
    )
    desk = HandoffDesk(
        engine,
        rasa,
        publisher,
        queue,
        profile=profile,
        availability=AvailabilityService(
            queue, profile, staff_hours=settings.staff_hours, clock=clock
        ),
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
        if owns_engine:
            engine.dispose()  # pooled connections would otherwise stay open until GC

    app = FastAPI(
        title="Tandem gateway",
        description="Customer chat API: conversations, messages, live WebSocket.",
        version="0.1.0",
        lifespan=lifespan,
        # bot/pages.py serves /docs with Swagger UI from a package (no CDN, same CSP).
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.desk = desk
    app.state.scorer = scorer
    app.state.limits = AbuseLimits(settings)
    app.state.flows = ChatFlows(
        engine,
        rasa,
        publisher,
        desk,
        scorer,
        policy,
        policy_file=settings.handoff_file,
        identity_secret=settings.identity_secret,
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
    app.include_router(ticket_views.router)
    app.include_router(pages.router)

    @app.exception_handler(DeskError)
    async def _desk_error(_: Request, error: DeskError) -> JSONResponse:
        return JSONResponse(
            {"detail": error.detail}, status_code=DESK_ERROR_STATUS.get(type(error), 422)
        )

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

    return app
