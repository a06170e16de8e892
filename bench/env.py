"""What a run takes from its environment: the PostgreSQL and Redis it uses, and the admin
key of its servers (put in the environment, so that spawned load generators share it).
Kept apart from server.py so that those load generators import little."""

from __future__ import annotations

import os
import uuid

PG_ADMIN = os.environ.get(
    "SWITCHBOARD_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("SWITCHBOARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
KEY = os.environ.setdefault("SWITCHBOARD_BENCH_KEY", f"bench-{uuid.uuid4().hex}")
AUTH = {"Authorization": f"Bearer {KEY}"}
