"""Settings from environment variables (prefix-free names, as in the README)."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tandem.local_files import load_or_create_secret

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Public (it was the default once): refused unless ALLOW_DEMO_SECRET is on, since anyone
# who knows it can sign an identity for any customer.
DEMO_IDENTITY_SECRET = "tandem-demo-identity-secret"
# Secrets left unset are generated at first run and kept in STATE_DIR/secrets/ (0600).
GENERATED_SECRETS = ("identity_secret", "rasa_auth_token", "action_server_token")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'tandem.db'}",
        description="SQLAlchemy URL; postgresql://... uses psycopg 3.",
    )
    business_file: Path = PROJECT_ROOT / "business.yml"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 10.0
    # How long the Rasa server may take to load its model at start (slow on a busy machine).
    rasa_start_timeout_seconds: float = Field(default=240.0, gt=0, le=3600)
    action_server_url: str = "http://127.0.0.1:5055"
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 8000
    max_message_chars: int = Field(default=2000, ge=1)
    redis_url: str | None = None
    staff_session_hours: int = Field(default=12, ge=1)
    staff_session_max_days: int = Field(default=7, ge=1)
    login_rate_limit_per_minute: int = Field(default=5, ge=1)
    # Key prefix for every Redis key and channel (queue, presence, bus), so that several
    # Tandem installs, or test runs, can share one Redis server.
    redis_prefix: str = Field(default="tandem:", min_length=1, max_length=60)
    # Score every customer message (off only to test other things without the model).
    sentiment_enabled: bool = True
    sentiment_batch_size: int = Field(default=32, ge=1, le=256)
    sentiment_batch_wait_ms: float = Field(default=5.0, ge=0, le=1000)
    handoff_file: Path = PROJECT_ROOT / "handoff.yml"
    # When staff answer: "business" = the opening hours in business.yml, "always" = any time
    # someone is online (24/7 teams, tests).
    staff_hours: Literal["business", "always"] = "business"
    # claim: staff pick conversations from the queue; auto: the least-loaded online
    # staff member with free capacity gets each new escalation.
    handoff_assignment: Literal["claim", "auto"] = "claim"
    # A queued conversation unannounced this long is raised one priority and re-announced.
    # Staff presence lapses this long after the last heartbeat (the console pings often).
    staff_presence_ttl_seconds: float = Field(default=30.0, gt=0)
    queue_sla_seconds: float = Field(default=120.0, gt=0)
    sla_check_seconds: float = Field(default=15.0, gt=0)
    # Where Tandem keeps its own files: SQLite database, logs, generated secrets.
    state_dir: Path = PROJECT_ROOT / "var"
    # The shared HMAC secret for signed customer identities (handoff/identity.py) and for
    # the identity the gateway hands to the actions. Unset: generated into var/secrets/.
    identity_secret: str = ""
    # Accept the public DEMO_IDENTITY_SECRET (demos and tests that sign with it only).
    allow_demo_secret: bool = False
    # Rasa's HTTP API (--auth-token) and the gateway's channel into Rasa require this token;
    # the action server requires ACTION_SERVER_TOKEN from Rasa. Unset: generated.
    rasa_auth_token: str = ""
    action_server_token: str = ""
    # Rasa's REST channel takes anyone's messages with made-up metadata; it stays off
    # unless a benchmark needs it (bench/latency.py).
    rasa_rest_channel: bool = False
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated IPs or networks,
    # e.g. "10.0.0.0/8"). Empty: the client address is the TCP peer.
    trusted_proxies: str = ""
    # Websites allowed to embed the widget (CORS and the chat WebSocket's Origin check),
    # comma-separated, e.g. "https://shop.example,https://www.shop.example". The gateway's
    # own pages (/demo, /) are always allowed; "*" allows any site.
    widget_allowed_origins: str = ""
    # Transcripts older than this many days are deleted (0 keeps them forever).
    retention_days: int = Field(default=365, ge=0)
    # Mask names, places, e-mail addresses, phone and card numbers in the sentiment log
    # and exports; the owner unmasks one conversation at a time, and that is recorded.
    pii_masking: bool = True
    # Rasa's SQL tracker store (a SQLite file) also holds transcripts: when set, deleting a
    # customer or purging old transcripts deletes Rasa's copy too. `make run` sets it.
    rasa_tracker_db: Path | None = None
    # Ticket replies by e-mail. Without SMTP_HOST every reply is written to MAIL_OUTBOX_DIR
    # as an .eml file (readable by the owner only) instead of being sent.
    mail_outbox_dir: Path = PROJECT_ROOT / "var" / "outbox"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    # The From address of replies; empty: the contact e-mail in business.yml.
    mail_from: str | None = Field(default=None, pattern=r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

    @property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [
            ip_network(p.strip(), strict=False)
            for p in self.trusted_proxies.split(",")
            if p.strip()
        ]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(
                        f"TRUSTED_PROXIES: {part.strip()!r} is not an IP address or network "
                        "(e.g. 10.0.0.1 or 10.0.0.0/8)"
                    ) from None
        return value

    # Abuse limits on the customer side (per client address, conversation or socket); on
    # Redis when REDIS_URL is set, so every gateway process counts together.
    limit_conversations_per_minute: int = Field(default=10, ge=1)
    limit_messages_per_minute: int = Field(default=20, ge=1)  # per conversation
    limit_client_messages_per_minute: int = Field(default=60, ge=1)  # per client address
    limit_ws_frames_per_minute: int = Field(default=120, ge=1)  # per chat WebSocket
    # Failed order checks (number + e-mail) per client address, across its conversations.
    limit_order_lookups_per_hour: int = Field(default=10, ge=1)
    # The staff WebSocket re-checks its session this often (deactivation, logout, reset).
    staff_ws_recheck_seconds: float = Field(default=30.0, gt=0)

    @property
    def allowed_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.widget_allowed_origins.split(",") if o.strip()]

    @model_validator(mode="after")
    def _secrets(self) -> Settings:
        if self.identity_secret == DEMO_IDENTITY_SECRET and not self.allow_demo_secret:
            raise ValueError(
                "IDENTITY_SECRET is the public demo value, so anyone could sign a customer's "
                "identity. Unset it (a random secret is generated into "
                f"{self.state_dir / 'secrets'}) or set your own; ALLOW_DEMO_SECRET=1 allows "
                "it for demos and tests."
            )
        for name in GENERATED_SECRETS:
            if not getattr(self, name):
                setattr(self, name, load_or_create_secret(self.state_dir / "secrets" / name))
        return self

    @field_validator("smtp_host", "smtp_username", "smtp_password", "mail_from", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _smtp_login_is_complete(self) -> Settings:
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set both SMTP_USERNAME and SMTP_PASSWORD, or neither")
        if self.smtp_username is not None and self.smtp_host is None:
            raise ValueError("SMTP_USERNAME is set but SMTP_HOST is not")
        return self

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, url: str) -> str:
        # One URL for everything: plain postgres URLs get the driver we ship.
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url


@lru_cache
def get_settings() -> Settings:
    return Settings()
