"""Starting and ending subscriptions, shared by the WebSocket and SSE transports.

The handoff from history to live loses and duplicates nothing: the subscription
joins the channel first (so live events buffer in it), then the snapshot or
replay is read and queued, then the buffer is flushed past what was sent.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from switchboard.auth.principal import Principal
from switchboard.config import Settings
from switchboard.errors import Gone, NotFound
from switchboard.metrics import METRICS
from switchboard.names import slug_of
from switchboard.realtime import protocol
from switchboard.realtime.connection import Connection, Subscription
from switchboard.realtime.hub import ChannelUnavailable, Hub
from switchboard.realtime.presence import Presence, public_counts
from switchboard.realtime.protocol import ProtocolError, RequestId
from switchboard.resources import board_out
from switchboard.store.boards import load_board
from switchboard.store.db import Database
from switchboard.store.events import events_after, find_board, visibility

FIRST_PAGE = 16
"""Events read before a replay knows how large its frames are."""


class Subscriber:
    """One connection's subscriptions: what `subscribe`/`unsubscribe` do, for any transport."""

    def __init__(
        self,
        connection: Connection,
        *,
        hub: Hub,
        db: Database,
        presence: Presence,
        settings: Settings,
    ) -> None:
        self.connection = connection
        self.hub = hub
        self.db = db
        self.presence = presence
        self.settings = settings

    async def subscribe(self, channel: str, slug: str, since: int | None, id_: RequestId) -> None:
        """Queue `subscribed`, the snapshot (or the replay after `since`), then go live."""
        subscriptions = self.connection.subscriptions
        if channel in subscriptions:
            raise ProtocolError("already_subscribed", f"already subscribed to {channel}", id=id_)
        if len(subscriptions) >= self.settings.ws_max_subscriptions:
            raise ProtocolError(
                "too_many_subscriptions",
                f"at most {self.settings.ws_max_subscriptions} subscriptions per connection",
                id=id_,
            )
        subscription = Subscription(self.connection, channel, self._lost)
        try:
            await self.hub.join(channel, subscription)
        except ChannelUnavailable:
            raise ProtocolError("unavailable", "the store is unavailable, retry", id=id_) from None
        subscriptions[channel] = subscription
        METRICS.subscriptions.inc()
        try:
            position = await self._start(channel, slug, since, id_)
        except BaseException:
            self.forget(channel)
            raise
        # Read access is checked now: only then does this viewer show in presence.
        subscription.in_presence = True
        self.presence.join(channel, self.connection.principal.identity)
        await subscription.go_live(position)

    async def _start(self, channel: str, slug: str, since: int | None, id_: RequestId) -> int:
        """Send `subscribed` and the snapshot or replay; return the seq they reach.

        Frames are built inside the read and sent after it: a client that does not read
        makes `send` wait, and must not hold a pooled database connection meanwhile."""
        try:
            async with self.db.read() as session:
                if since is None:
                    board, widgets = await load_board(session, slug)
                    self.connection.principal.require_read(slug, board.public)
                    snapshot = self._snapshot(channel, board.seq, board_out(board, widgets))
                else:
                    board = await find_board(session, slug)
                    self.connection.principal.require_read(slug, board.public)
                    snapshot = None
                head = board.seq
        except NotFound as exc:
            raise ProtocolError("not_found", exc.message, id=id_) from None
        await self.connection.send(self._subscribed(channel, head, id_))
        if snapshot is not None:
            await self.connection.send(snapshot)
            return head
        assert since is not None
        return await self._replay(channel, slug, since, head, id_)

    @staticmethod
    def _subscribed(channel: str, seq: int, id_: RequestId) -> str:
        return protocol.encode({"type": "subscribed", "channel": channel, "seq": seq}, id_)

    async def _replay(self, channel: str, slug: str, since: int, head: int, id_: RequestId) -> int:
        """Send stored events after `since` up to at least `head`; `reset` if they are gone.

        Pages are read only as the client drains, and sized to the room its queue has left
        (by the frames seen so far), so a replay holds about one queue's worth in memory
        whatever the history."""
        position = since
        frame_size, most = 0, min(FIRST_PAGE, self.settings.replay_page_size)
        while position < head:
            limit = await self.connection.room(frame_size, most)
            try:
                async with self.db.read() as session:
                    board = await find_board(session, slug, deleted=True)
                    events = await events_after(session, board, position, limit=limit)
            except (Gone, NotFound):
                return await self._reset(channel, slug, id_)
            frames = [(e.seq, protocol.stored_event_frame(slug, e).decode()) for e in events]
            del events
            if frames:  # the first page measures the frames; later ones are sized by them
                frame_size = max(1, sum(len(f) for _, f in frames) // len(frames))
                most = self.settings.replay_page_size
            for seq, frame in frames:
                await self.connection.send(frame)
                position = seq
            if len(frames) < limit:
                break
        if since > head:  # the client is ahead of us: its state is from another life
            return await self._reset(channel, slug, id_)
        return position

    async def _reset(self, channel: str, slug: str, id_: RequestId) -> int:
        await self.connection.send(
            protocol.encode({"type": "reset", "channel": channel, "reason": "history_expired"})
        )
        async with self.db.read() as session:
            try:
                board, widgets = await load_board(session, slug)
            except NotFound as exc:  # deleted meanwhile: the error answers the `subscribe`
                raise ProtocolError("not_found", exc.message, id=id_) from None
        await self.connection.send(self._snapshot(channel, board.seq, board_out(board, widgets)))
        return board.seq

    @staticmethod
    def _snapshot(channel: str, seq: int, data: Any) -> str:
        frame = {
            "type": "snapshot",
            "channel": channel,
            "seq": seq,
            "data": data.model_dump(mode="json"),
        }
        return protocol.encode(frame)

    async def unsubscribe(self, channel: str, id_: RequestId) -> None:
        if channel not in self.connection.subscriptions:
            raise ProtocolError("not_subscribed", f"not subscribed to {channel}", id=id_)
        self.forget(channel)
        await self.connection.send(
            protocol.encode({"type": "unsubscribed", "channel": channel}, id_)
        )

    async def who(self, channel: str, id_: RequestId) -> None:
        """Who watches `channel` (on every worker): identity → open subscriptions."""
        subscription = self.connection.subscriptions.get(channel)
        if subscription is None:
            raise ProtocolError("not_subscribed", f"subscribe to {channel} first", id=id_)
        subscription.wants_presence = True
        try:
            viewers = await self.presence.who(channel)
        except (RedisError, OSError):
            raise ProtocolError("unavailable", "presence is unavailable, retry", id=id_) from None
        if self.connection.principal.role is None:  # anonymous: counts, not key identities
            viewers = public_counts(viewers)
        await self.connection.send(
            protocol.encode({"type": "presence", "channel": channel, "viewers": viewers}, id_)
        )

    def forget(self, channel: str) -> None:
        subscription = self.connection.subscriptions.pop(channel, None)
        if subscription is not None:
            self.hub.leave(channel, subscription)
            if subscription.in_presence:
                self.presence.leave(channel, self.connection.principal.identity)
            METRICS.subscriptions.dec()

    async def reauthorize(self, principal: Principal) -> None:
        """The connection now holds `principal`: from this moment every change is checked
        against it (`Subscription._may_see`); presence counts its subscriptions under the
        new identity; and each subscription is checked again now, against the store, those
        no longer readable ending as a lost access does."""
        connection = self.connection
        old = connection.principal.identity
        connection.principal = principal  # no await until presence has moved too
        if principal.identity != old:
            for channel, subscription in connection.subscriptions.items():
                if subscription.in_presence:
                    self.presence.leave(channel, old)
                    self.presence.join(channel, principal.identity)
        subscriptions = list(connection.subscriptions.values())
        if not subscriptions:
            return
        slugs = [slug_of(s.channel) for s in subscriptions]
        async with self.db.read() as session:
            public = await visibility(session, slugs)
        for slug, subscription in zip(slugs, subscriptions, strict=True):
            # A board deleted meanwhile is left to its deletion event, which ends it.
            if slug in public and not principal.can_read(slug, public[slug]):
                self._lost(subscription)

    def _lost(self, subscription: Subscription) -> None:
        """Its board became unreadable: unsubscribe, then tell the client (the transport
        decides how: an `error` frame on a WebSocket, the end of an SSE stream)."""
        if self.connection.subscriptions.get(subscription.channel) is subscription:
            self.forget(subscription.channel)
            self.connection.transport.lost_access(self.connection, subscription.channel)

    def close(self) -> None:
        """Leave every channel (the client is gone)."""
        for channel in list(self.connection.subscriptions):
            self.forget(channel)
