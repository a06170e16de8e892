"""Settings: one pydantic-settings class, read from `SWITCHBOARD_*` environment variables."""

from __future__ import annotations

from functools import cached_property

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server can be told; defaults give the embedded mode (SQLite + memory)."""

    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", env_file=None, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./switchboard.db"
    broker_url: str = "memory://"
    admin_key: str | None = None
    secret: str | None = None

    broker_prefix: str = ""
    """Prepended to every broker channel, so deployments (and test runs) can share a Redis."""

    log_level: str = "info"
    log_json: bool = False

    # Store
    event_retention: int = Field(default=10_000, ge=1)
    db_pool_size: int = Field(default=10, ge=1)

    # REST
    page_limit_default: int = Field(default=50, ge=1)
    page_limit_max: int = Field(default=500, ge=1)

    # Realtime
    ws_queue_max_messages: int = Field(default=1_000, ge=1)
    ws_max_frame_bytes: int = Field(default=64 * 1024, ge=256)
    ws_max_subscriptions: int = Field(default=100, ge=1)
    replay_page_size: int = Field(default=500, ge=1)
    broker_subscribe_timeout: float = Field(default=5.0, gt=0)

    @cached_property
    def is_sqlite(self) -> bool:
        """The embedded store: one process, writes serialised in-process."""
        return self.database_url.startswith("sqlite")

    @cached_property
    def is_memory_broker(self) -> bool:
        return self.broker_url.startswith("memory:")
