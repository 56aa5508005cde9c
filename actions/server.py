"""`python -m actions.server`: rasa-sdk's action server, on loopback, behind a token.

rasa-sdk 3.21 has no authentication of its own and listens on every interface, while
its actions read orders and cancel them. This wraps its app: every route but /health
needs ACTION_SERVER_TOKEN, which Rasa sends as `Authorization: Bearer <token>` (the
`action_endpoint` headers written by tandem/run.py), and the server binds 127.0.0.1
unless told otherwise.
"""

from __future__ import annotations

import argparse
import hmac
import logging

from rasa_sdk.endpoint import create_app as create_sdk_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from tandem.config import get_settings

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health"})


def token_ok(request: Request, token: str) -> bool:
    supplied = request.headers.get("authorization", "")
    scheme, _, value = supplied.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())


def create_app(token: str, package: str = "actions") -> Sanic:
    if not token:
        raise ValueError("the action server needs a token (ACTION_SERVER_TOKEN)")
    executor = ActionExecutor()
    executor.register_package(package)
    # No CORS: only Rasa, on this machine, calls the action server.
    app = create_sdk_app(executor, cors_origins=None)

    async def require_token(request: Request) -> HTTPResponse | None:
        if request.path in OPEN_PATHS or token_ok(request, token):
            return None
        return response.json({"error": "missing or wrong action server token"}, status=401)

    app.register_middleware(require_token, "request")
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m actions.server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(get_settings().action_server_token)
    logger.info("action server on http://%s:%d", args.host, args.port)
    app.run(host=args.host, port=args.port, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
