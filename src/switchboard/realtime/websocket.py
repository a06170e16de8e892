"""The `/ws` endpoint: read frames, dispatch on `type`, answer in order.

Each connection handles its own frames one at a time, so replies keep the
order of requests; fan-out reaches it through its `Subscription`s meanwhile.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.websockets import WebSocket

from switchboard.errors import Gone, NotFound
from switchboard.metrics import METRICS
from switchboard.realtime import protocol
from switchboard.realtime.connection import Connection, Subscription
from switchboard.realtime.hub import ChannelUnavailable
from switchboard.realtime.protocol import Ping, ProtocolError, Subscribe, Unsubscribe
from switchboard.resources import board_out
from switchboard.state import AppState
from switchboard.store.boards import load_board
from switchboard.store.events import events_after, find_board

log = structlog.get_logger(__name__)


class Handler:
    """The protocol for one connection."""

    def __init__(self, state: AppState, connection: Connection) -> None:
        self.state = state
        self.connection = connection
        self.settings = state.settings

    async def handle(self, text: str) -> None:
        try:
            if len(text) > self.settings.ws_max_frame_bytes:
                raise ProtocolError(
                    "frame_too_large", f"frames are limited to {self.settings.ws_max_frame_bytes}"
                )
            message = protocol.parse(text)
            match message:
                case Ping():
                    await self.connection.send(protocol.encode({"type": "pong"}, message.id))
                case Subscribe():
                    await self.subscribe(message)
                case Unsubscribe():
                    await self.unsubscribe(message)
        except ProtocolError as exc:
            await self.connection.send(protocol.error(exc.code, exc.message, exc.id))

    async def subscribe(self, message: Subscribe) -> None:
        channel, id_ = message.channel, message.id
        subscriptions = self.connection.subscriptions
        if channel in subscriptions:
            raise ProtocolError("already_subscribed", f"already subscribed to {channel}", id=id_)
        if len(subscriptions) >= self.settings.ws_max_subscriptions:
            raise ProtocolError(
                "too_many_subscriptions",
                f"at most {self.settings.ws_max_subscriptions} subscriptions per connection",
                id=id_,
            )
        subscription = Subscription(self.connection, channel)
        hub = self.state.hub
        try:
            await hub.join(channel, subscription)
        except ChannelUnavailable:
            raise ProtocolError("unavailable", "the store is unavailable, retry", id=id_) from None
        subscriptions[channel] = subscription
        METRICS.subscriptions.inc()
        try:
            position = await self._start(message)
        except BaseException:
            self._forget(channel)
            raise
        subscription.go_live(position)

    async def _start(self, message: Subscribe) -> int:
        """Send `subscribed` and the snapshot or replay; return the seq they reach."""
        send, channel, slug, id_ = self.connection.send, message.channel, message.slug, message.id
        try:
            async with self.state.db.read() as session:
                if message.since is None:
                    board, widgets = await load_board(session, slug)
                    await send(
                        protocol.encode(
                            {"type": "subscribed", "channel": channel, "seq": board.seq}, id_
                        )
                    )
                    await self._snapshot(channel, board.seq, board_out(board, widgets))
                    return board.seq
                board = await find_board(session, slug)
                head = board.seq
        except NotFound as exc:
            raise ProtocolError("not_found", exc.message, id=id_) from None
        await send(protocol.encode({"type": "subscribed", "channel": channel, "seq": head}, id_))
        return await self._replay(channel, slug, message.since, head)

    async def _replay(self, channel: str, slug: str, since: int, head: int) -> int:
        """Send stored events after `since` up to at least `head`; `reset` if they are gone."""
        position = since
        page = self.settings.replay_page_size
        while position < head:
            try:
                async with self.state.db.read() as session:
                    board = await find_board(session, slug, deleted=True)
                    events = await events_after(session, board, position, limit=page)
            except (Gone, NotFound):
                return await self._reset(channel, slug)
            for event in events:
                await self.connection.send(protocol.stored_event_frame(slug, event).decode())
                position = event.seq
            if len(events) < page:
                break
        if since > head:  # the client is ahead of us: its state is from another life
            return await self._reset(channel, slug)
        return position

    async def _reset(self, channel: str, slug: str) -> int:
        await self.connection.send(
            protocol.encode({"type": "reset", "channel": channel, "reason": "history_expired"})
        )
        async with self.state.db.read() as session:
            board, widgets = await load_board(session, slug)
        await self._snapshot(channel, board.seq, board_out(board, widgets))
        return board.seq

    async def _snapshot(self, channel: str, seq: int, data: Any) -> None:
        frame = {
            "type": "snapshot",
            "channel": channel,
            "seq": seq,
            "data": data.model_dump(mode="json"),
        }
        await self.connection.send(protocol.encode(frame))

    async def unsubscribe(self, message: Unsubscribe) -> None:
        channel = message.channel
        if channel not in self.connection.subscriptions:
            raise ProtocolError("not_subscribed", f"not subscribed to {channel}", id=message.id)
        self._forget(channel)
        await self.connection.send(
            protocol.encode({"type": "unsubscribed", "channel": channel}, message.id)
        )

    def _forget(self, channel: str) -> None:
        subscription = self.connection.subscriptions.pop(channel, None)
        if subscription is not None:
            self.state.hub.leave(channel, subscription)
            METRICS.subscriptions.dec()

    def close(self) -> None:
        for channel in list(self.connection.subscriptions):
            self._forget(channel)


async def websocket_endpoint(websocket: WebSocket) -> None:
    state: AppState = websocket.state.switchboard
    await websocket.accept()
    connection = Connection(websocket, max_queue=state.settings.ws_queue_max_messages)
    handler = Handler(state, connection)
    connection.start()
    METRICS.connections.inc()
    try:
        while connection.close_code is None:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                await connection.send(protocol.error("invalid_frame", "send JSON text frames"))
                continue
            await handler.handle(text)
    except Exception:
        log.exception("websocket_handler_failed")
    finally:
        handler.close()
        await connection.stop()
        METRICS.connections.dec()
