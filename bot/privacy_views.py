"""Personal data (/api/owner/privacy): unmasking, one customer's export and deletion."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.auth import require_csrf

router = APIRouter(
    prefix="/api/owner/privacy", tags=["privacy"], dependencies=[Depends(require_csrf)]
)
