"""`create_app()`: the FastAPI application and the lifespan that opens everything.

Nothing connects at import time. The lifespan opens the store (migrating the
embedded SQLite store itself), the broker and the hub, and yields two things on the
request state: the typed `AppState` REST routes read (`request.state.switchboard`),
and the `realtime` `Node` WebSocket and SSE connections read (`.realtime`), which
holds only what connections need.
"""

from __future__ import annotations

import functools
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp

from switchboard import web
from switchboard.access import AccessLog
from switchboard.api import api_router, openapi, ops_router, routing
from switchboard.api.cors import Cors
from switchboard.api.direct import DirectWidgetPatch
from switchboard.api.http_metrics import HttpMetricsMiddleware
from switchboard.api.idempotency import IdempotencyMiddleware
from switchboard.api.middleware import BodyLimitMiddleware
from switchboard.auth.authenticator import Authenticator
from switchboard.auth.limits import create_limiter
from switchboard.auth.revocation import CONTROL_CHANNEL, Revocations
from switchboard.auth.tokens import TokenIssuer
from switchboard.broker import close_client, create_broker, redis_client
from switchboard.bypass import WebSocketBypass, WebSocketEndpoint
from switchboard.config import Settings
from switchboard.errors import DATABASE_ERRORS, install_error_handlers
from switchboard.logs import configure_logging
from switchboard.realtime.connections import Connections
from switchboard.realtime.hub import Hub
from switchboard.realtime.node import Node
from switchboard.realtime.presence import PRESENCE_CHANNEL, Presence, create_presence
from switchboard.realtime.publisher import Publisher
from switchboard.realtime.websocket import websocket_endpoint
from switchboard.shutdown import close_within, on_stop_signals
from switchboard.state import AppState
from switchboard.store import migrate
from switchboard.store.db import Database, Retention
from switchboard.store.keys import bootstrap_admin_key, claim_setting
from switchboard.web import docs

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
    except DATABASE_ERRORS as exc:
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


async def _open(settings: Settings, stack: AsyncExitStack) -> dict[str, object]:
    """Open everything the app needs, each resource's cleanup pushed on `stack` as soon as
    it exists: whatever step fails, what was opened before it is released (in reverse
    order, each step under its own deadline), and so is everything at shutdown."""

    def on_close(name: str, close: Callable[[], Awaitable[None]]) -> None:
        stack.push_async_callback(close_within, name, close, settings.shutdown_step_timeout)

    connections = Connections(
        per_credential=settings.max_connections_per_credential,
        max_queue=settings.ws_queue_max_messages,
        max_bytes=settings.ws_queue_max_bytes,
    )
    # First in, so last out: the stop deadline and the second-signal exit cover every step.
    stack.enter_context(on_stop_signals(connections.drain, deadline=settings.stop_deadline))
    db = Database(
        settings.database_url,
        retention=Retention(settings.event_retention, settings.event_retention_age),
        pool_size=settings.db_pool_size,
    )
    on_close("database", db.dispose)
    if db.is_sqlite:
        await migrate.upgrade(settings.database_url)
    redis = redis_client(
        settings.broker_url, timeout=settings.redis_timeout, prefix=settings.broker_prefix
    )
    if redis is not None:
        on_close("redis", functools.partial(close_client, redis))
    broker = create_broker(redis, prefix=settings.broker_prefix, timeout=settings.redis_timeout)
    on_close("broker", broker.close)
    hub = Hub(
        broker,
        db,
        catchup_interval=settings.catchup_interval,
        degraded_interval=settings.catchup_interval_degraded,
    )
    on_close("hub", hub.close)
    await broker.connect(hub)
    hub.start()
    authenticator = Authenticator(
        db,
        TokenIssuer(functools.partial(_token_secret, settings, db), admin_key=settings.admin_key),
        admin_key=settings.admin_key,
        cache_ttl=settings.key_cache_ttl,
    )
    if not settings.admin_key:
        await _bootstrap(db)
    revocations = Revocations(
        authenticator, connections, broker, db, interval=settings.credential_check_interval
    )
    on_close("revocations", revocations.close)
    await hub.listen(CONTROL_CHANNEL, revocations.on_message)
    revocations.start()
    presence = Presence(
        create_presence(redis, settings.broker_prefix, settings.presence_ttl),
        hub.notify,
        interval=settings.presence_interval,
        broker=broker,
    )
    hub.presence = presence
    await hub.listen(PRESENCE_CHANNEL, presence.on_message)
    on_close("presence", presence.close)
    presence.start()
    realtime = Node(settings, db, hub, presence, connections, authenticator.authenticate)
    state = AppState(
        settings,
        db,
        broker,
        Publisher(broker),
        authenticator,
        create_limiter(
            settings.write_rate_limit, redis, settings.broker_prefix, lambda: broker.healthy
        ),
        revocations,
        realtime,
    )
    log.info("started", database=db.engine.url.render_as_string(), broker=settings.broker_url)
    return {"switchboard": state, "realtime": realtime}


class SwitchboardApp(FastAPI):
    """FastAPI with the two outermost layers `add_middleware` cannot place: `AccessLog`
    around everything, Starlette's `ServerErrorMiddleware` included, and inside it the
    WebSocket endpoints of `websocket_bypass` reached with no stack between
    (`WebSocketBypass`)."""

    websocket_bypass: dict[str, WebSocketEndpoint]

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        endpoints = getattr(self, "websocket_bypass", None)
        return AccessLog(WebSocketBypass(app, endpoints) if endpoints else app)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` default to the environment (`SWITCHBOARD_*`)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json, secrets=settings.credentials)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, object]]:
        async with AsyncExitStack() as stack:
            yield await _open(settings, stack)
            log.info("stopping")
        log.info("stopped")

    app = SwitchboardApp(  # request ids and the access log, outermost
        title="Switchboard",
        summary="Live dashboards: REST writes, WebSocket and SSE fan-out.",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,  # web.docs serves /docs and /redoc with bundled assets
        redoc_url=None,
    )
    install_error_handlers(app)
    openapi.install(app)
    routing.install(app)
    app.add_middleware(DirectWidgetPatch, max_bytes=settings.max_body_bytes)  # innermost
    app.add_middleware(IdempotencyMiddleware, router=app.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(Cors, origins=settings.allowed_origins)  # preflights stop here
    app.add_middleware(HttpMetricsMiddleware, router=app.router)  # sees every answer
    app.include_router(api_router)
    app.include_router(ops_router)
    app.add_api_websocket_route("/ws", websocket_endpoint)  # listed; reached directly:
    app.websocket_bypass = {"/ws": websocket_endpoint}
    app.include_router(web.router)
    docs.install(app)
    app.mount("/static", web.static_files, name="static")
    return app
