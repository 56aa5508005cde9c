"""Talks to the Rasa server through the Tandem input channel (see bot/rasa_channel.py)."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from tandem.conversations.assistant import AssistantTurn, AssistantUnavailable

logger = logging.getLogger(__name__)

# Rasa is the gateway's assistant (tandem.conversations.assistant.Assistant).
RasaTurn = AssistantTurn


class RasaUnavailable(AssistantUnavailable):
    """Rasa did not answer in time, or answered with an error."""


class RasaClient:
    def __init__(self, base_url: str, timeout_seconds: float, token: str = "") -> None:
        # The Tandem channel reads the header; Rasa's HTTP API (--auth-token) only reads
        # the `token` query parameter.
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_seconds, connect=min(2.0, timeout_seconds)),
            headers={"Authorization": f"Bearer {token}"} if token else None,
        )
        self._api_params = {"token": token} if token else {}

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> RasaTurn:
        try:
            response = await self._client.post(
                "/webhooks/tandem/webhook",
                json={"sender": sender, "message": text, "metadata": metadata},
            )
        except httpx.HTTPError as error:
            raise RasaUnavailable(f"Rasa did not answer: {error!r}") from error
        if response.status_code != 200:
            raise RasaUnavailable(f"Rasa answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        return RasaTurn(
            parse_data=body.get("parse_data") or {}, messages=body.get("messages") or []
        )

    async def resume(self, sender: str) -> bool:
        """After a person handled the chat: drop any open form and wait for the customer.

        Uses Rasa's HTTP API (the server runs with --enable-api). False when Rasa did not
        take it; the next message still reaches Rasa, so this is logged, not raised.
        """
        events = [
            {"event": "active_loop", "name": None},
            {"event": "slot", "name": "requested_slot", "value": None},
            {"event": "action", "name": "action_listen"},
        ]
        try:
            response = await self._client.post(
                f"/conversations/{sender}/tracker/events",
                params={"include_events": "NONE", **self._api_params},
                json=events,
            )
        except httpx.HTTPError as error:
            logger.warning("could not tell Rasa to resume %s: %r", sender, error)
            return False
        if response.status_code != 200:
            logger.warning(
                "Rasa refused to resume %s: %s %s",
                sender,
                response.status_code,
                response.text[:200],
            )
            return False
        return True

    async def is_healthy(self) -> bool:
        try:
            response = await self._client.get("/status", params=self._api_params, timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def aclose(self) -> None:
        await self._client.aclose()
