"""Rasa input channel used by the gateway (runs inside the Rasa server, Python 3.10).

Like Rasa's REST channel, but it parses the message once, hands the parse to the
dialogue (`UserMessage.parse_data`), and returns it beside the bot's messages, so
the gateway learns intent, confidence and entities without a second request.

Rasa's --auth-token does not cover input channels, so this one checks the same token
itself (`Authorization: Bearer <RASA_AUTH_TOKEN>`): only the gateway may speak for a
conversation, and pass the signed identity metadata the actions rely on.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)


class TandemInput(InputChannel):
    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the Tandem channel needs RASA_AUTH_TOKEN (the gateway's token)")
        self.token = token

    @classmethod
    def name(cls) -> str:
        return "tandem"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls(os.environ.get("RASA_AUTH_TOKEN", ""))

    def authorized(self, request: Request) -> bool:
        scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), self.token.encode()
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = Blueprint("tandem_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self.authorized(request):
                return response.json({"error": "missing or wrong token"}, status=401)
            body: dict[str, Any] = request.json or {}
            sender = body.get("sender")
            text = body.get("message")
            if not isinstance(sender, str) or not isinstance(text, str):
                return response.json({"error": "sender and message are required"}, status=400)
            metadata = body.get("metadata") or {}
            agent = request.app.ctx.agent
            if agent is None or not agent.is_ready():
                return response.json({"error": "no model loaded"}, status=503)

            parse_data = await agent.processor.parse_message(
                UserMessage(text, sender_id=sender, metadata=metadata)
            )
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    text,
                    collector,
                    sender,
                    parse_data=parse_data,
                    input_channel=self.name(),
                    metadata=metadata,
                )
            )
            return response.json({"messages": collector.messages, "parse_data": parse_data})

        return webhook
