"""Operations endpoints: liveness, readiness, metrics; the realtime protocol's description."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from switchboard.api.deps import State
from switchboard.metrics import CONTENT_TYPE, METRICS
from switchboard.realtime.asyncapi import document

router = APIRouter(tags=["operations"])
READY_TIMEOUT = 2.0


class Readiness(BaseModel):
    """`/readyz`'s answer, 200 or 503 alike: what is reachable from this worker."""

    status: Literal["ok", "degraded"]
    database: Literal["ok", "unavailable"]
    broker: Literal["ok", "unavailable"]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=None,
    responses={
        200: {"model": Readiness, "description": "Database and broker reachable"},
        503: {"model": Readiness, "description": "Something is unreachable (`degraded`)"},
    },
)
async def readyz(state: State) -> JSONResponse:
    """Database and broker reachable: 200 `ok`, or 503 with what is missing."""
    try:
        await asyncio.wait_for(state.db.ping(), READY_TIMEOUT)
        database = "ok"
    except Exception:
        database = "unavailable"
    broker = "ok" if state.broker.healthy else "unavailable"
    ok = database == "ok" and broker == "ok"
    body = {"status": "ok" if ok else "degraded", "database": database, "broker": broker}
    return JSONResponse(body, status_code=200 if ok else 503)


# Load balancers often probe with HEAD: the same answer without the body (the server
# drops it), documented as operations of their own.
router.add_api_route(
    "/healthz",
    healthz,
    methods=["HEAD"],
    name="probe_healthz",
    description="`GET /healthz` without the body, for load balancers that probe with HEAD.",
)
router.add_api_route(
    "/readyz",
    readyz,
    methods=["HEAD"],
    name="probe_readyz",
    response_model=None,
    responses={503: {"description": "Something is unreachable"}},
    description="`GET /readyz` without the body: 200 ready, 503 not.",
)


@router.get("/metrics", response_class=Response)
async def metrics() -> Response:
    """Prometheus text: with several workers, all of them, whichever one answers."""
    if METRICS.directory is None:
        body = METRICS.exposition()
    else:  # reads every worker's files: off the event loop
        body = await asyncio.to_thread(METRICS.exposition)
    return Response(body, media_type=CONTENT_TYPE)


@router.get(
    "/asyncapi.json",
    response_class=JSONResponse,
    responses={200: {"description": "An AsyncAPI 3.0 document"}},
)
async def asyncapi() -> Response:
    """The WebSocket protocol and the SSE stream, as an AsyncAPI 3.0 document (built once)."""
    return Response(document(), media_type="application/json")
