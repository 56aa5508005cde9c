"""Keep conversation ids out of logs.

A conversation id is half of the customer's credential (the token is the other half and
never appears in a URL). Uvicorn's access and WebSocket lines carry it in the path, and
some gateway messages name it. This filter replaces every id with a short one-way tag,
`conv-1a2b3c4d` (sha256 prefix), which still lets one follow a conversation through a log.
"""

from __future__ import annotations

import hashlib
import logging
import re

_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])")
_LOGGERS = ("uvicorn.access", "uvicorn.error", "uvicorn")
_OWN_PREFIXES = ("bot", "tandem", "handoff")


def tag(conversation_id: str) -> str:
    return "conv-" + hashlib.sha256(conversation_id.encode()).hexdigest()[:8]


def redact(text: str) -> str:
    return _ID.sub(lambda match: tag(match.group(0)), text)


class RedactConversationIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


_FILTER = RedactConversationIds()


def install() -> None:
    """Attach the filter to uvicorn's loggers, the gateway's own and the root handlers.

    A logger's filter only sees records made on that logger, so each one gets it.
    """
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".", 1)[0] in _OWN_PREFIXES
    ]
    for name in (*_LOGGERS, *names):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in logging.root.handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
