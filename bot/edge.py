"""Input at the edge: body size (also for chunked uploads) and text no database can store.

A pure ASGI middleware, so that a body sent without Content-Length (chunked) is counted
while it streams in and refused at the limit, instead of being read in full. Request
bodies are small here (a message is a few KB), so the checked body is kept in memory
and replayed to the app.

Text that no database can store (a NUL character, a lone UTF-16 surrogate such as
"\\ud800" in JSON) is refused with 422 and an explanation, wherever it is in the JSON
body, the path or the query string; the WebSocket frames use `text_problem` too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
# Ids are 32-bit columns; a larger number can only be a mistake (SQLite refuses above 2**63).
MAX_ID = 2**31 - 1


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None when it can."""
    if "\x00" in value:
        return "The text contains a NUL character (\\u0000), which cannot be stored."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (
            "The text contains a lone UTF-16 surrogate (such as \\ud800), which is not a "
            "character; send valid Unicode."
        )
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def json_problem(value: Any) -> str | None:
    """The first string anywhere in a parsed JSON value that cannot be stored, explained."""
    for text in _strings(value):
        problem = text_problem(text)
        if problem is not None:
            return problem
    return None


class BodyTooLarge(Exception):
    pass


class EdgeInput:
    """Refuse over-long bodies (413) and unstorable text (422) before any route runs."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self._url_problem(scope)
        if problem is not None:
            await JSONResponse({"detail": problem}, status_code=422)(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._too_large(scope, receive, send)
            return
        try:
            body = await self._read_body(receive)
        except BodyTooLarge:
            await self._too_large(scope, receive, send)
            return
        if body and b"json" in headers.get(b"content-type", b""):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None  # the route answers malformed JSON with its own 422
            problem = json_problem(parsed)
            if problem is not None:
                await JSONResponse({"detail": problem}, status_code=422)(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    def _url_problem(self, scope: Scope) -> str | None:
        path = unquote(scope.get("raw_path", b"").decode("latin-1") or scope["path"])
        query = scope.get("query_string", b"").decode("latin-1")
        for value in (path, *(v for pair in parse_qsl(query) for v in pair)):
            problem = text_problem(value)
            if problem is not None:
                return problem
        return None

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge()
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"Request body over {self.max_body_bytes} bytes."
        response = JSONResponse({"detail": detail}, 413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        # After the body: wait for the disconnect, as the server's own receive does.
        return await receive()

    return replayed
