"""`create_app()`: the FastAPI application and the lifespan that opens everything.

Nothing connects at import time. The lifespan opens the store (migrating the
embedded SQLite store itself), the broker and the hub, and yields them as one
typed `AppState` that requests and connections read from `request.state`.
"""

from __future__ import annotations

import functools
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from switchboard import web
from switchboard.api import api_router, ops_router
from switchboard.api.idempotency import IdempotencyMiddleware
from switchboard.api.middleware import BodyLimitMiddleware
from switchboard.auth.authenticator import Authenticator
from switchboard.auth.limits import ConnectionCounter, create_limiter
from switchboard.auth.revocation import Revocations
from switchboard.auth.tokens import TokenIssuer
from switchboard.broker import create_broker
from switchboard.config import Settings
from switchboard.errors import install_error_handlers
from switchboard.logs import configure_logging
from switchboard.realtime.drain import Drain
from switchboard.realtime.hub import Hub
from switchboard.realtime.presence import Presence, create_presence
from switchboard.realtime.publisher import Publisher
from switchboard.realtime.websocket import websocket_endpoint
from switchboard.shutdown import close_all
from switchboard.state import AppState
from switchboard.store import migrate
from switchboard.store.db import Database, Retention
from switchboard.store.keys import bootstrap_admin_key, claim_setting

log = structlog.get_logger(__name__)


async def _token_secret(settings: Settings, db: Database) -> str:
    """`SWITCHBOARD_SECRET`, or one generated on first start and shared through the store."""
    if settings.secret:
        return settings.secret
    secret, _ = await claim_setting(db, "token_secret", lambda: secrets.token_urlsafe(48))
    return secret


async def _bootstrap(db: Database) -> None:
    """The first start on an empty store makes an admin key and shows it, once, on the
    terminal only: never logged, never stored in clear."""
    try:
        secret = await bootstrap_admin_key(db)
    except (OSError, DBAPIError) as exc:
        log.warning("bootstrap_skipped", reason="database unavailable", error=repr(exc))
        return
    if secret is None:
        return
    print(
        "\n  No API key existed, so an admin key was created. It is shown only this once:\n\n"
        f"      {secret}\n\n"
        "  Send it as `Authorization: Bearer <key>`; make others with `switchboard keys create`.\n",
        file=sys.stderr,
        flush=True,
    )


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
        authenticator = Authenticator(
            db,
            TokenIssuer(
                functools.partial(_token_secret, settings, db), admin_key=settings.admin_key
            ),
            admin_key=settings.admin_key,
            cache_ttl=settings.key_cache_ttl,
        )
        if not settings.admin_key:
            await _bootstrap(db)
        drain = Drain()
        revocations = Revocations(
            authenticator, drain, broker, db, interval=settings.credential_check_interval
        )
        await revocations.start(hub)
        limiter = create_limiter(settings.write_rate_limit, broker, settings.broker_prefix)
        presence = Presence(
            create_presence(broker, settings.broker_prefix, settings.presence_ttl),
            hub.notify,
            interval=settings.presence_interval,
            ttl=settings.presence_ttl,
        )
        presence.start()
        state = AppState(
            settings,
            db,
            broker,
            hub,
            Publisher(broker),
            authenticator,
            limiter,
            ConnectionCounter(settings.max_connections_per_credential),
            revocations,
            presence,
            drain,
        )
        log.info("started", database=db.engine.url.render_as_string(), broker=settings.broker_url)
        with state.drain.on_signals(deadline=settings.stop_deadline):
            try:
                yield {"switchboard": state}
            finally:
                await close_all(
                    [
                        ("presence", presence.close),
                        ("revocations", revocations.close),
                        ("hub", hub.close),
                        ("broker", broker.close),
                        ("database", db.dispose),
                    ],
                    settings.shutdown_step_timeout,
                )
                log.info("stopped")

    app = FastAPI(
        title="Switchboard",
        summary="Live dashboards: REST writes, WebSocket and SSE fan-out.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)  # outermost
    app.include_router(api_router)
    app.include_router(ops_router)
    app.add_api_websocket_route("/ws", websocket_endpoint)
    app.include_router(web.router)
    app.mount("/static", web.static_files, name="static")
    return app
