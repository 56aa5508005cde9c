"""`python -m tandem.run`: prepare and start the whole product, stop it cleanly on Ctrl-C.

Starts the action server, the Rasa server and the gateway as child processes, waits
for each health check, then prints the URL. Tests use `Stack` to do the same once
per session.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import yaml
from sqlalchemy import select, text
from sqlalchemy.exc import SQLAlchemyError

from tandem.config import PROJECT_ROOT, Settings, get_settings
from tandem.db import make_engine, migrate, session_scope, utcnow
from tandem.local_files import private_dir, private_file, write_private
from tandem.rasa_model import RasaSetupError, ensure_model, rasa_env, rasa_executable

APP_PYTHON = sys.executable


class StartupError(RuntimeError):
    """One clear reason why the product cannot start."""


@dataclass
class Service:
    name: str
    command: list[str]
    health_url: str
    healthy: Callable[[httpx.Response], bool]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # Sent with the health check but never shown in messages (Rasa's token).
    health_params: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        log = private_file(self.log_path).open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop the children in order
            umask=0o077,  # whatever they write (tracker store, models, logs) is owner-only
        )

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise StartupError(
                    f"{self.name} exited with code {self.process.returncode} while starting.\n"
                    f"Last lines of {self.log_path}:\n{tail(self.log_path)}"
                )
            try:
                if self.healthy(httpx.get(self.health_url, params=self.health_params, timeout=2.0)):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise StartupError(
            f"{self.name} did not become healthy within {timeout:.0f} s "
            f"({self.health_url}).\nLast lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def port_of(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def free_port() -> int:
    """A port nobody listens on now (for tests and benchmarks)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_port_free(port: int, owner: str, setting: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise StartupError(
                f"Port {port} ({owner}) is already in use. Stop the program using it "
                f"(see 'ss -ltnp sport = :{port}'), or choose another port with {setting}."
            ) from None


def check_database(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = str(error.orig) if getattr(error, "orig", None) else str(error)
        raise StartupError(
            f"Cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{reason.strip().splitlines()[0]}\nCheck DATABASE_URL, or start the database."
        ) from None
    finally:
        engine.dispose()


def write_endpoints(
    path: Path, action_url: str, action_token: str, tracker_db: Path, redis_url: str | None
) -> Path:
    endpoints: dict[str, object] = {
        # The action server refuses calls without this header (actions/server.py).
        "action_endpoint": {
            "url": action_url.rstrip("/") + "/webhook",
            "headers": {"Authorization": f"Bearer {action_token}"},
        },
        "tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(tracker_db)},
    }
    if redis_url:
        parts = urlsplit(redis_url)
        endpoints["lock_store"] = {
            "type": "redis",
            "url": parts.hostname or "127.0.0.1",
            "port": parts.port or 6379,
            "db": int((parts.path or "/0").lstrip("/") or 0),
            "key_prefix": "tandem",
        }
    return write_private(path, yaml.safe_dump(endpoints, sort_keys=False))


def write_credentials(path: Path, rest_channel: bool) -> Path:
    """Rasa's input channels: the gateway's own (token-checked, bot/rasa_channel.py) and,
    only when asked (RASA_REST_CHANNEL, for bench/latency.py), Rasa's REST channel, which
    takes anyone's messages and metadata."""
    channels: dict[str, None] = {"bot.rasa_channel.TandemInput": None}
    if rest_channel:
        channels["rest"] = None
    return write_private(path, yaml.safe_dump(channels, sort_keys=False))


@dataclass
class Stack:
    """Action server, Rasa server and (optionally) the gateway, on the settings' ports."""

    settings: Settings
    state_dir: Path = PROJECT_ROOT / "var"
    with_gateway: bool = True
    services: list[Service] = field(default_factory=list)

    @classmethod
    def isolated(cls, state_dir: Path, **overrides: object) -> Stack:
        """A stack on free ports with its own seeded SQLite database and mail outbox (tests,
        benchmarks)."""
        database_url = f"sqlite:///{state_dir / 'tandem.db'}"
        migrate(database_url)
        seed_demo_database(database_url, history=True)
        settings = Settings(
            database_url=database_url,
            rasa_url=f"http://127.0.0.1:{free_port()}",
            action_server_url=f"http://127.0.0.1:{free_port()}",
            gateway_port=free_port(),
            **{"mail_outbox_dir": state_dir / "outbox", **overrides},  # type: ignore[arg-type]
        )
        return cls(settings, state_dir=state_dir)

    def preflight(self) -> Path:
        checks = [
            (port_of(self.settings.action_server_url), "action server", "ACTION_SERVER_URL"),
            (port_of(self.settings.rasa_url), "Rasa server", "RASA_URL"),
        ]
        if self.with_gateway:
            checks.append((self.settings.gateway_port, "gateway", "GATEWAY_PORT"))
        for port, owner, setting in checks:
            check_port_free(port, owner, setting)
        check_database(self.settings.database_url)
        try:
            rasa_executable()
            model = ensure_model()
        except RasaSetupError as error:
            raise StartupError(str(error)) from None
        prepare_sentiment_model()
        return model

    def start(self, model: Path) -> None:
        rasa_port = port_of(self.settings.rasa_url)
        private_dir(self.state_dir)
        tracker_db = private_file(self.state_dir / f"rasa-tracker-{rasa_port}.db")
        # The gateway deletes Rasa's copy of a transcript with ours (privacy, retention).
        self.settings = self.settings.model_copy(update={"rasa_tracker_db": tracker_db})
        env = {**os.environ, **settings_env(self.settings)}
        logs = self.state_dir / "logs"
        endpoints = write_endpoints(
            self.state_dir / f"endpoints-{rasa_port}.yml",
            self.settings.action_server_url,
            self.settings.action_server_token,
            tracker_db,
            self.settings.redis_url,
        )
        credentials = write_credentials(
            self.state_dir / f"credentials-{rasa_port}.yml", self.settings.rasa_rest_channel
        )
        self.services = [
            Service(
                "action server",
                [
                    APP_PYTHON,
                    "-m",
                    "actions.server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port_of(self.settings.action_server_url)),
                ],
                self.settings.action_server_url.rstrip("/") + "/health",
                lambda r: r.status_code == 200,
                env,
                logs / "actions.log",
            ),
            Service(
                "Rasa server",
                [
                    # `rasa run`, with --auth-token added from RASA_AUTH_TOKEN (not argv).
                    str(rasa_executable().with_name("python")),
                    "-m",
                    "bot.rasa_launch",
                    "--enable-api",
                    "--model",
                    str(model),
                    "--endpoints",
                    str(endpoints),
                    "--credentials",
                    str(credentials),
                    "--interface",
                    "127.0.0.1",
                    "--port",
                    str(rasa_port),
                ],
                self.settings.rasa_url.rstrip("/") + "/status",
                lambda r: r.status_code == 200 and bool(r.json().get("model_file")),
                {**rasa_env(), "RASA_AUTH_TOKEN": self.settings.rasa_auth_token},
                logs / "rasa.log",
                health_params={"token": self.settings.rasa_auth_token},
            ),
        ]
        if self.with_gateway:
            self.services.append(
                Service(
                    "gateway",
                    gateway_command(self.settings),
                    f"http://127.0.0.1:{self.settings.gateway_port}/healthz",
                    lambda r: r.status_code == 200,
                    env,
                    logs / "gateway.log",
                )
            )
        try:
            for service in self.services:
                service.start()
            for service in self.services:
                print(f"  waiting for the {service.name}…", flush=True)
                rasa = service.name == "Rasa server"
                service.wait_healthy(
                    timeout=self.settings.rasa_start_timeout_seconds if rasa else 60
                )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()


def gateway_command(settings: Settings) -> list[str]:
    return [
        APP_PYTHON,
        "-m",
        "uvicorn",
        "bot.app:create_app",
        "--factory",
        "--host",
        settings.gateway_host,
        "--port",
        str(settings.gateway_port),
        "--no-access-log",
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default, so any local client
        # (or a proxy passing the header on) could pick its address; only TRUSTED_PROXIES may.
        *(
            ["--forwarded-allow-ips", settings.trusted_proxies]
            if settings.trusted_proxies
            else ["--no-proxy-headers"]
        ),
    ]


def prepare_sentiment_model() -> None:
    """Train the default sentiment model once per corpus (cached under var/models)."""
    from sentiment.train import CorpusError, ensure_default_model

    if os.environ.get("SENTIMENT_MODEL"):
        return  # the owner chose a model; the analyzer reports if it cannot load it
    try:
        ensure_default_model()
    except CorpusError as error:
        raise StartupError(f"The sentiment model cannot be trained: {error}") from None


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as environment variables, so that every child process agrees."""
    return {
        key.upper(): str(value) for key, value in settings.model_dump().items() if value is not None
    }


def prepare_database(settings: Settings, *, seed: bool = True) -> None:
    check_database(settings.database_url)
    migrate(settings.database_url)
    if seed:
        seed_demo_database(settings.database_url, history=True)


def seed_demo_database(url: str, *, history: bool = False) -> None:
    """Load the demo business once (a no-op when business data exists) with its canned
    replies and, with `history`, four weeks of demo conversations (channel "demo")."""
    from tandem.business.history import seed_history
    from tandem.business.seed import seed_demo
    from tandem.canned.service import seed_defaults

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            # Canned replies only with a fresh demo: the owner may have deleted them since.
            if not seed_demo(session).skipped:
                seed_defaults(session)
                if history:
                    seed_history(session, now=utcnow())
    finally:
        engine.dispose()


def has_owner(url: str) -> bool:
    from tandem.staff.models import StaffRole, StaffUser

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            owner = session.scalar(
                select(StaffUser.id).where(
                    StaffUser.role == StaffRole.OWNER.value, StaffUser.active.is_(True)
                )
            )
            return owner is not None
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tandem.run", description=__doc__)
    parser.add_argument("--no-seed", action="store_true", help="do not load the demo data")
    args = parser.parse_args(argv)
    os.umask(0o077)  # databases, logs and secrets under var/ are owner-only
    settings = get_settings()
    private_dir(settings.state_dir)
    stack = Stack(settings, state_dir=settings.state_dir)
    try:
        model = stack.preflight()
        prepare_database(settings, seed=not args.no_seed)
        print("Starting Tandem (Rasa takes about a minute)…", flush=True)
        stack.start(model)
    except StartupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    url = f"http://{settings.gateway_host}:{settings.gateway_port}/"
    print(
        f"\nTandem is running: {url}\n"
        f"  Demo shop with the chat widget: {url}demo\n"
        f"  Staff console: {url}staff    Owner dashboard: {url}owner\n"
        f"  API docs: {url}docs",
        flush=True,
    )
    if not has_owner(settings.database_url):
        print(
            "  No owner account yet: create one with\n"
            "    .venv/bin/python -m tandem.staff create-owner --email you@example.com",
            flush=True,
        )
    print("Press Ctrl-C to stop.", flush=True)

    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stopping:
            for service in stack.services:
                if service.process is not None and service.process.poll() is not None:
                    print(
                        f"error: the {service.name} stopped unexpectedly; see "
                        f"{service.log_path}\n{tail(service.log_path)}",
                        file=sys.stderr,
                    )
                    stopping = True
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    print("\nStopping…", flush=True)
    stack.stop()
    print("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
