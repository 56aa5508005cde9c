"""Canned replies: staff read them (/api/staff/canned-replies), the owner manages them."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.auth import require_csrf

router = APIRouter(tags=["canned replies"], dependencies=[Depends(require_csrf)])
