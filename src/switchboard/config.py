"""Settings: one pydantic-settings class, read from `SWITCHBOARD_*` environment variables."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from switchboard import database_url
from switchboard.broker import CLUSTER_SCHEME, REDIS_SCHEMES

_LOCAL_PATH = re.compile(r"/(?![/\\])[^\s#\\]*")


class Settings(BaseSettings):
    """Everything the server can be told; defaults give the embedded mode (SQLite + memory)."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_file=None, extra="ignore")

    database_url: str = database_url.DEFAULT_DATABASE_URL
    broker_url: str = "memory://"
    admin_key: str | None = None
    secret: str | None = None

    broker_prefix: str = ""
    """Prepended to every broker channel, so deployments (and test runs) can share a Redis."""

    log_level: str = "info"
    log_json: bool = False

    # Store
    event_retention: int = Field(default=10_000, ge=1)
    """Events kept per board; older ones are trimmed (in batches of 100 writes)."""
    event_retention_age: timedelta | None = None
    """If set, events older than this are trimmed too (seconds or ISO 8601 duration)."""
    idempotency_ttl: timedelta = timedelta(hours=24)
    """How long an `Idempotency-Key` and its response are kept (seconds or ISO 8601)."""
    db_pool_size: int = Field(default=10, ge=1)

    # REST
    page_limit_default: int = Field(default=50, ge=1)
    page_limit_max: int = Field(default=500, ge=1)
    batch_max_widgets: int = Field(default=100, ge=1)
    """Widgets one `PATCH /api/boards/{slug}/widgets` may change; a larger batch is a 422."""

    # Realtime
    ws_queue_max_messages: int = Field(default=1_000, ge=1)
    """Frames queued for one client before it is closed with 4008 (slow consumer)."""
    ws_queue_max_bytes: int = Field(default=4 * 1024 * 1024, ge=0)
    """Characters (≈ bytes) queued for one client before 4008; 0 for no byte bound."""
    ws_compression: bool = False
    """Per-message deflate: smaller frames for about 35 KiB more memory per connection, 43
    once frames have gone both ways (measured: bench/NOTES.md), and no pre-built-frame
    fast path (frames must be compressed per connection)."""
    ws_close_timeout: float = Field(default=30.0, gt=0)
    """How long a connection the server closes (4008, 4101, 1012…) may take to deliver its
    close frame behind unread data before it is dropped without it."""
    drain_timeout: float = Field(default=8.0, gt=0)
    """On SIGTERM, how long open requests and connections get to finish before they are
    cancelled (uvicorn's graceful shutdown timeout)."""
    shutdown_step_timeout: float = Field(default=1.5, gt=0)
    """Each cleanup step after the drain (presence, revocations, hub, broker, database)
    gets this long; one that overruns is cancelled and logged."""
    stop_deadline: float = Field(default=13.0, gt=0)
    """Seconds after the first stop signal by which the process exits whatever it is
    doing; a second signal exits at once."""
    ws_ping_interval: float = Field(default=20.0, gt=0)
    """Seconds between the server's WebSocket pings."""
    ws_ping_timeout: float = Field(default=20.0, gt=0)
    """A connection that does not answer a ping within this is dropped."""
    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=256)
    """Client frames larger than this get an `error` frame (the connection stays)."""
    ws_max_message_bytes: int = Field(default=1024 * 1024, ge=1024)
    """The hard limit: a larger client frame closes the connection with 1009."""
    ws_max_subscriptions: int = Field(default=100, ge=1)
    replay_page_size: int = Field(default=500, ge=1)
    redis_timeout: float = Field(default=2.0, gt=0)
    """Seconds to connect to Redis, for any Redis command, for a free pooled connection,
    and for Redis to confirm a SUBSCRIBE (one set of timeouts for the worker's one client)."""
    catchup_interval: float = Field(default=2.0, gt=0)
    """Seconds between the hub's store polls that catch notifications the broker lost."""
    catchup_interval_degraded: float = Field(default=0.25, gt=0)
    """The same poll while the broker is down: the store is then the only doorbell."""
    presence_interval: float = Field(default=1.0, gt=0)
    """Seconds between presence updates: joins and leaves are coalesced over this."""
    presence_ttl: float = Field(default=30.0, gt=0)
    """A worker's presence entries expire this long after its last refresh (a crashed
    worker's viewers disappear within it)."""
    sse_keepalive: float = Field(default=15.0, gt=0)
    """Seconds between `: keep-alive` comments on an idle SSE stream (proxies drop silent ones)."""

    # Credentials and limits
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Browser origins besides the server's own ("*" for any) allowed to open WebSockets
    and to read REST and SSE answers (CORS, `api/cors.py`); comma-separated in the
    environment. Empty: same-origin only, no CORS headers at all."""
    dashboard_token_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Paths on this server's origin that the dashboard page may POST to for fresh viewer
    tokens (`?token_url=` must be one of them, exactly); comma-separated in the
    environment. Empty: the page refuses every `token_url` (`refresh=parent` still works)."""
    token_ttl: int = Field(default=900, ge=1)
    """Default lifetime of a viewer token, seconds."""
    token_ttl_max: int = Field(default=86_400, ge=1)
    key_cache_ttl: float = Field(default=5.0, ge=0)
    """Seconds a worker trusts its cached copy of a key (revocations also evict at once)."""
    credential_check_interval: float = Field(default=5.0, gt=0)
    """Seconds between checks that open connections' keys are still live."""
    write_rate_limit: int = Field(default=100, ge=0)
    """Writes per second per credential family (a key and every token it minted share one
    budget), across all workers (0: no limit)."""
    max_connections_per_credential: int = Field(default=1_000, ge=1)
    """Open WebSocket/SSE connections per credential (per client address when anonymous),
    per worker."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    ws_max_frames_per_second: int = Field(default=200, ge=1)
    """A client sending more frames than this in a second is closed with 1008."""

    @field_validator("database_url")
    @classmethod
    def _known_store(cls, value: str) -> str:
        return database_url.check(value)

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme == CLUSTER_SCHEME:
            from switchboard.broker.cluster import ClusterUrl

            ClusterUrl.parse(value)  # a clear ValueError for a malformed node list
            return value
        if scheme not in ("memory", *REDIS_SCHEMES) or "://" not in value:
            raise ValueError(
                "must be memory://, redis://host:6379/0 (rediss://, unix://) "
                "or redis+cluster://host:port[,host:port...]"
            )
        return value

    @field_validator("broker_prefix")
    @classmethod
    def _untagged_prefix(cls, value: str, info: ValidationInfo) -> str:
        url = info.data.get("broker_url", "")
        if url.startswith(f"{CLUSTER_SCHEME}:") and ("{" in value or "}" in value):
            raise ValueError(
                "may not hold { or } with a redis+cluster:// broker (a hash tag in the "
                "prefix would put every board in one slot)"
            )
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip().rstrip("/") for item in value.split(",") if item.strip()]
        return value

    @field_validator("dashboard_token_urls", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("dashboard_token_urls")
    @classmethod
    def _only_paths(cls, value: list[str]) -> list[str]:
        """Each a path on this origin: one leading `/` (`//host` and `/\\host` are other
        hosts to a browser), no fragment, no backslash or whitespace."""
        for path in value:
            if not _LOCAL_PATH.fullmatch(path):
                raise ValueError(f"{path!r} is not a path on this server, such as /app/token")
        return value

    @property
    def credentials(self) -> tuple[str | None, ...]:
        """Every secret this configuration holds, for the logs to hide wherever it appears:
        the admin key, the signing secret, the store's and the broker's passwords."""
        passwords = (urlsplit(url).password for url in (self.database_url, self.broker_url))
        return (self.admin_key, self.secret, *passwords)

    @cached_property
    def is_sqlite(self) -> bool:
        """The embedded store: one process, writes serialised in-process."""
        return self.database_url.startswith("sqlite")

    @cached_property
    def is_memory_broker(self) -> bool:
        return self.broker_url.startswith("memory:")


HIDDEN = frozenset({"admin_key", "secret"})
"""Settings whose value an error message never repeats (URLs are shown without password)."""


class SettingsError(Exception):
    """The environment holds settings Switchboard cannot start with: `problems`, one line
    each (which variable, what is wrong), for a command to print instead of a traceback."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def load_settings() -> Settings:
    """`Settings()` from the environment, or `SettingsError` naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError([_problem(error) for error in exc.errors()]) from None


def _problem(error: ErrorDetails) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if field in HIDDEN or not isinstance(value, str | int | float):
        return f"SWITCHBOARD_{field.upper()}: {message}"
    shown = (
        database_url.shown(value) if isinstance(value, str) and field.endswith("_url") else value
    )
    return f"SWITCHBOARD_{field.upper()}={shown!r}: {message}"
