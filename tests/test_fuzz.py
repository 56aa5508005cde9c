"""Fuzzing the HTTP API from its OpenAPI schema (schemathesis): no input gives a 5xx.

As a customer (with a real conversation's id and token, so requests get past the token
check), as a staff member and as the owner (session cookie and CSRF header). Bounded by
FUZZ_EXAMPLES examples per operation (default 25) so that `make test` stays quick; raise
it for a longer hunt: `FUZZ_EXAMPLES=500 pytest -m fuzz`. Rasa is a closed port and the
sentiment model is off: the fuzz is about the gateway's own handling of input.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from bot.app import create_app
from bot.auth import CSRF_HEADER, SESSION_COOKIE
from bot.customer_auth import TOKEN_HEADER
from tandem.abuse.service import LIFTED_LIMITS
from tandem.config import PROJECT_ROOT, Settings
from tandem.db import migrate, session_scope
from tandem.run import free_port, seed_demo_database
from tandem.staff import service as staff_service
from tests.chat_client import Chat, start_chat

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure in CI reproduces locally
    suppress_health_check=list(HealthCheck),
    database=None,
)
CUSTOMER_PATHS = r"^/(api/business|api/conversations|healthz)"
STAFF_PATHS = r"^/api/staff/"
OWNER_PATHS = r"^/api/owner/"
# Calls that would end the very session the fuzzer uses.
SESSION_ENDING = r"^/api/staff/(logout|login)$"


@dataclass
class Target:
    app: FastAPI
    chat: Chat
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    migrate(url)
    seed_demo_database(url)
    # Copies of the owner's files: the policy and business routes write them.
    for name in ("handoff.yml", "business.yml"):
        shutil.copy(PROJECT_ROOT / name, tmp / name)
    app = create_app(
        Settings(
            database_url=url,
            rasa_url=f"http://127.0.0.1:{free_port()}",
            rasa_timeout_seconds=1.0,
            sentiment_enabled=False,
            handoff_file=tmp / "handoff.yml",
            business_file=tmp / "business.yml",
            staff_hours="always",
            login_rate_limit_per_minute=100_000,
            **LIFTED_LIMITS,  # one fuzzer, thousands of requests
        )
    )
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    original, staff_service.password_hasher = staff_service.password_hasher, cheap
    headers: dict[str, dict[str, str]] = {}
    with TestClient(app) as client:
        with session_scope(app.state.engine) as session:
            for role in ("staff", "owner"):
                user = staff_service.create_user(
                    session, email=f"{role}@fuzz.example", password="fuzz password", role=role
                )
                new = staff_service.start_session(session, user)
                headers[role] = {
                    "Cookie": f"{SESSION_COOKIE}={new.token}",
                    CSRF_HEADER: new.csrf_token,
                }
        chat = start_chat(client)
        client.post(chat.url + "/messages", json={"text": "a person please"}, headers=chat.headers)
        yield Target(app, chat, headers)
    staff_service.password_hasher = original


def fuzz(target: Target, include: str, headers: dict[str, str]) -> dict[str, str]:
    """Every operation under `include`, with valid and invalid input; the 5xx found."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.app)
    schema = schema.include(path_regex=include).exclude(path_regex=SESSION_ENDING)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, include
    for operation in operations:
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @FUZZ
        @given(case=cases)
        def run(case: Any) -> None:
            call(case, target, headers)

        try:
            run()
        except Exception as error:  # a 5xx, or the app raised: either is a finding
            failures[f"{operation.method.upper()} {operation.path}"] = repr(error)[:500]
    return failures


def call(case: Any, target: Target, headers: dict[str, str]) -> None:
    # Half the time a real conversation, so the handlers behind the id check run too.
    path = case.path_parameters or {}
    if "conversation_id" in path and hash(repr(case.body)) % 2 == 0:
        path["conversation_id"] = target.chat.id
    case.headers = {**(case.headers or {}), **headers}
    # Exports mask personal data with a model that loads on first use: allow for it.
    response = case.call(timeout=120)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )


def test_customer_api_never_answers_5xx(target: Target) -> None:
    assert fuzz(target, CUSTOMER_PATHS, {TOKEN_HEADER: target.chat.token}) == {}


def test_staff_api_never_answers_5xx(target: Target) -> None:
    assert fuzz(target, STAFF_PATHS, target.headers["staff"]) == {}


def test_owner_api_never_answers_5xx(target: Target) -> None:
    assert fuzz(target, OWNER_PATHS, target.headers["owner"]) == {}
