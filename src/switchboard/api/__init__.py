"""The REST API under `/api`, plus the operations endpoints at the root."""

from __future__ import annotations

from fastapi import APIRouter

from switchboard.api import boards, events, keys, ops, stream, widgets

api_router = APIRouter(prefix="/api")
for module in (boards, widgets, events, stream, keys):
    api_router.include_router(module.router)

ops_router = ops.router

__all__ = ["api_router", "ops_router"]
