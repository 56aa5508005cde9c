"""Settings from environment variables (prefix-free names, as in the README)."""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Public on purpose (the demo signs identities with it); production must set its own.
DEMO_IDENTITY_SECRET = "tandem-demo-identity-secret"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'tandem.db'}",
        description="SQLAlchemy URL; postgresql://... uses psycopg 3.",
    )
    business_file: Path = PROJECT_ROOT / "business.yml"
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout_seconds: float = 10.0
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
    # The shared HMAC secret for signed customer identities (handoff/identity.py). The demo
    # default is public: set IDENTITY_SECRET in production or identities can be forged.
    identity_secret: str = Field(default=DEMO_IDENTITY_SECRET, min_length=1)
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

    # Abuse limits on the customer side (per client address, conversation or socket); on
    # Redis when REDIS_URL is set, so every gateway process counts together.
    limit_conversations_per_minute: int = Field(default=10, ge=1)
    limit_messages_per_minute: int = Field(default=20, ge=1)  # per conversation
    limit_client_messages_per_minute: int = Field(default=60, ge=1)  # per client address
    limit_ws_frames_per_minute: int = Field(default=120, ge=1)  # per chat WebSocket
    # Failed order checks (number + e-mail) per client address, across its conversations.
    limit_order_lookups_per_hour: int = Field(default=10, ge=1)
    # Reverse proxies whose X-Forwarded-For is believed (IPs or networks, comma-separated);
    # from anyone else the header is ignored, so a client cannot pick its own address.
    trusted_proxies: str = ""
    # The staff WebSocket re-checks its session this often (deactivation, logout, reset).
    staff_ws_recheck_seconds: float = Field(default=30.0, gt=0)

    @property
    def trusted_proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        parts = (p.strip() for p in self.trusted_proxies.split(","))
        return [ip_network(p, strict=False) for p in parts if p]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_parse(cls, value: str) -> str:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            try:
                ip_network(part, strict=False)
            except ValueError:
                raise ValueError(
                    f"TRUSTED_PROXIES: {part!r} is not an IP address or network"
                ) from None
        return value

    @property
    def allowed_origins(self) -> list[str]:
        return [o.strip().rstrip("/") for o in self.widget_allowed_origins.split(",") if o.strip()]

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
