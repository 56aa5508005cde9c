"""The owner's API (/api/owner): sentiment log, reports, exports, staff and policy."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.auth import require_csrf

router = APIRouter(prefix="/api/owner", tags=["owner"], dependencies=[Depends(require_csrf)])
