"""`create_app()`: the FastAPI application and the lifespan that opens everything.

Nothing connects at import time. The lifespan opens the store (migrating the
embedded SQLite store itself), the broker and the hub, and yields them as one
typed `AppState` that requests and connections read from `request.state`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI

from switchboard.api import api_router, ops_router
from switchboard.api.idempotency import IdempotencyMiddleware
from switchboard.broker import create_broker
from switchboard.config import Settings
from switchboard.errors import install_error_handlers
from switchboard.logs import configure_logging
from switchboard.realtime.hub import Hub
from switchboard.realtime.publisher import Publisher
from switchboard.realtime.websocket import websocket_endpoint
from switchboard.state import AppState
from switchboard.store import migrate
from switchboard.store.db import Database, Retention

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` default to the environment (`SWITCHBOARD_*`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, AppState]]:
        db = Database(
            settings.database_url,
            retention=Retention(settings.event_retention, settings.event_retention_age),
            pool_size=settings.db_pool_size,
        )
        if db.is_sqlite:
            await migrate.upgrade(settings.database_url)
        broker = create_broker(settings.broker_url, prefix=settings.broker_prefix)
        hub = Hub(
            broker,
            db,
            catchup_interval=settings.catchup_interval,
            degraded_interval=settings.catchup_interval_degraded,
        )
        await broker.connect(hub)
        hub.start()
        state = AppState(settings, db, broker, hub, Publisher(broker))
        log.info("started", database=db.engine.url.render_as_string(), broker=settings.broker_url)
        try:
            with state.drain.on_signals():
                yield {"switchboard": state}
        finally:
            await hub.close()
            await broker.close()
            await db.dispose()

    app = FastAPI(
        title="Switchboard",
        summary="Live dashboards: REST writes, WebSocket and SSE fan-out.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.include_router(api_router)
    app.include_router(ops_router)
    app.add_api_websocket_route("/ws", websocket_endpoint)
    return app
