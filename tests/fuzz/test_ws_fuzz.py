"""Property-based fuzzing of the WebSocket protocol (hypothesis): random frames never kill
the connection handler or the worker; every reply is a well-formed protocol frame."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from tests.helpers import ADMIN_KEY, ServerProcess

REPLY_TYPES = {
    "subscribed",
    "unsubscribed",
    "snapshot",
    "event",
    "reset",
    "pong",
    "authed",
    "error",
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
channels = st.sampled_from(["board:ops", "board:private", "board:a", "board:nope"]) | st.text(
    max_size=30
)
protocol_frames = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["subscribe", "unsubscribe", "ping", "presence", "auth", "SUBSCRIBE", ""]
        )
    },
    optional={
        "token": st.just(ADMIN_KEY) | st.text(max_size=60) | json_values,
        "channel": channels | json_values,
        "since": st.integers(min_value=-5, max_value=2**70) | json_values,
        "id": st.text(max_size=200) | st.integers() | json_values,
    },
).map(json.dumps)
frames = st.lists(
    protocol_frames
    | json_values.map(json.dumps)
    | st.text(max_size=300)
    | st.binary(max_size=300)
    | st.just("x" * 70_000),  # over the soft frame limit: an error, not a close
    max_size=8,
)


@given(sent=frames, with_key=st.booleans())
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_random_frames_never_break_the_connection(
    fuzz_server: ServerProcess, sent: list[str | bytes], with_key: bool
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"} if with_key else {}
    with connect(fuzz_server.ws_url, additional_headers=headers, max_size=None) as ws:
        for frame in sent:
            ws.send(frame)
        ws.send(json.dumps({"type": "ping", "id": "final"}))
        while True:
            reply: dict[str, Any] = json.loads(ws.recv(timeout=5))
            assert reply["type"] in REPLY_TYPES, reply
            if reply["type"] == "error":
                assert isinstance(reply["code"], str)
                assert isinstance(reply["message"], str)
            if reply == {"type": "pong", "id": "final"}:
                break


def test_worker_survived_the_fuzzing(fuzz_server: ServerProcess) -> None:
    assert fuzz_server.process.poll() is None
    assert httpx.get(f"{fuzz_server.base_url}/readyz").status_code == 200
