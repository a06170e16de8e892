"""Redis Cluster broker: one sharded channel per board, SPUBLISH / SSUBSCRIBE.

A board's channel is `<prefix>{board:<slug>}`: the hash tag puts it, and the board's
presence key, in one slot, served by one master. Each worker keeps one subscriber
connection per master that serves a channel it holds (`link.SubscriberLink`, the same
guarantees as the single-Redis broker). redis-py's `ClusterPubSub` is not used: it
reconnects and re-routes silently, so its user cannot know what was missed.

What moves a channel: a slot migrated to another master (Redis ends the subscription
with a `sunsubscribe` push), a master that fails (its replica is promoted), a node that
restarts. Each makes the router refresh the slot map and subscribe the channel where it
lives now; the confirmation is reported as `on_resubscribed`, so the hub reads the store
for whatever was published meanwhile. While a link is down the router retries often.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from dataclasses import dataclass
from urllib.parse import unquote

import structlog
from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, SlotNotCoveredError

from switchboard.broker.base import Broker, BrokerListener, BrokerUnavailable
from switchboard.broker.link import BACKOFF_MAX, IO_ERRORS, SHARDED, Naming, SubscriberLink
from switchboard.shutdown import Background

log = structlog.get_logger(__name__)

CLUSTER_ERRORS = (*IO_ERRORS, RedisClusterException)
"""What an unreachable or reconfiguring cluster raises (no slot map, a slot not covered)."""

CLUSTER_SCHEME = "redis+cluster"
_URL = re.compile(
    r"redis\+cluster://(?:(?P<user>[^:@/]*)(?::(?P<password>[^@/]*))?@)?"
    r"(?P<nodes>[^/?#@]+)/?"
)
_NODE = re.compile(r"(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>[0-9]{1,5})")


@dataclass(frozen=True)
class ClusterUrl:
    """`redis+cluster://[user[:password]@]host:port[,host:port...]`: any nodes of the
    cluster (one is enough, more survive one being down at start)."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> ClusterUrl:
        match = _URL.fullmatch(url)
        if match is None:
            raise ValueError(
                "a cluster URL is redis+cluster://host:port[,host:port...] "
                "(optionally user:password@ before the nodes; no database, no path)"
            )
        nodes = []
        for part in match["nodes"].split(","):
            node = _NODE.fullmatch(part.strip())
            if node is None or not 0 < int(node["port"]) < 65536:
                raise ValueError(f"cluster node {part!r} is not host:port (port 1-65535)")
            nodes.append((node["host"].strip("[]"), int(node["port"])))
        user, password = match["user"], match["password"]
        return cls(
            tuple(nodes),
            unquote(user) if user else None,
            unquote(password) if password is not None else None,
        )


def cluster_client(url: str, *, timeout: float, name: str = "switchboard") -> RedisCluster:
    """The worker's one cluster client (publishes, presence, rate limits), with the same
    timeouts and naming as the single-Redis client, RESP2 for the same reason."""
    parsed = ClusterUrl.parse(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        username=parsed.username,
        password=parsed.password,
        protocol=2,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        client_name=name,
        retry=Retry(NoBackoff(), 1),
    )


class ClusterBroker(Broker):
    """One subscriber link per master holding our channels; a router that moves
    channels to wherever the slot map says they live now."""

    def __init__(
        self,
        cluster: RedisCluster,
        *,
        key_prefix: str = "",
        timeout: float = 2.0,
        ping_interval: float = 5.0,
        recheck_interval: float = 0.25,
    ) -> None:
        self._cluster = cluster
        self._naming = Naming(key_prefix, tagged=True)
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._recheck = recheck_interval
        self._listener: BrokerListener | None = None
        self._wanted: set[str] = set()
        self._route: dict[str, str] = {}  # channel -> node name (host:port)
        self._links: dict[str, SubscriberLink] = {}
        self._trouble = asyncio.Event()
        self._router = Background()
        self._mapped = False  # the slot map was read (the cluster answered) last time

    # Broker
    async def connect(self, listener: BrokerListener) -> None:
        """Read the slot map and start the router; run degraded if the cluster is down."""
        self._listener = listener
        with contextlib.suppress(*CLUSTER_ERRORS):
            async with asyncio.timeout(self._timeout):
                await self._cluster.initialize()
                self._mapped = True
        if not self._mapped:
            log.warning("broker_unavailable_at_start")
        self._router.start(self._run(), "cluster broker router")

    async def close(self) -> None:
        await self._router.stop()
        for link in self._links.values():
            await link.stop()
        self._links.clear()
        self._wanted.clear()
        self._route.clear()
        self._listener = None

    async def publish(self, channel: str, payload: bytes) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._cluster.spublish(self._naming.key(channel), payload)
        except CLUSTER_ERRORS as exc:
            # Down until the router reads the slot map again: the next writes skip the
            # publish rather than each wait out the timeout, and the hubs poll fast.
            self._mapped = False
            self._trouble.set()
            raise BrokerUnavailable(str(exc)) from exc

    async def subscribe(self, channel: str) -> None:
        self._wanted.add(channel)
        try:
            node = self._owner(channel)
        except CLUSTER_ERRORS as exc:  # no slot map yet, or the slot is not served
            self._trouble.set()
            raise BrokerUnavailable(f"no node for {channel}: {exc!r}") from exc
        self._route[channel] = node.name
        try:
            await self._link(node).subscribe(channel)
        except BrokerUnavailable:
            self._trouble.set()
            raise

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        link = self._links.get(self._route.pop(channel, ""))
        if link is not None:
            await link.unsubscribe(channel)

    @property
    def healthy(self) -> bool:
        """The slot map was readable last time, and every link holding channels is up."""
        return (
            self._listener is not None
            and self._mapped
            and all(link.healthy for link in self._links.values() if link.wanted)
        )

    # Links and routing
    def _owner(self, channel: str) -> ClusterNode:
        """The master serving `channel`'s slot in the slot map as last read."""
        node = self._cluster.get_node_from_key(self._naming.key(channel))
        if node is None:
            raise SlotNotCoveredError(f"no master serves {channel}")
        return node

    def _link(self, node: ClusterNode) -> SubscriberLink:
        link = self._links.get(node.name)
        if link is None:
            assert self._listener is not None
            link = self._links[node.name] = SubscriberLink(
                lambda: self._connection(node),
                verbs=SHARDED,
                naming=self._naming,
                listener=self._listener,
                timeout=self._timeout,
                ping_interval=self._ping_interval,
                name=f"cluster broker {node.name}",
                on_lost=self._trouble.set,
                on_dropped=lambda _channel: self._trouble.set(),
            )
            link.start()
        return link

    @staticmethod
    def _connection(node: ClusterNode) -> AbstractConnection:
        """A connection of the link's own to `node`, with the cluster client's settings."""
        conn: AbstractConnection = node.connection_class(**node.connection_kwargs)
        return conn

    async def _run(self) -> None:
        """Re-route after trouble, and every `recheck` while a link or the map is down."""
        delay = self._recheck
        while self._router.running:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._ping_interval if self.healthy else delay):
                    await self._trouble.wait()
            self._trouble.clear()
            try:
                await self._reroute()
                delay = self._recheck
            except CLUSTER_ERRORS as exc:
                if self._mapped:
                    log.warning("cluster_unreachable", error=repr(exc))
                self._mapped = False
                delay = min(delay * 2, BACKOFF_MAX)

    async def _reroute(self) -> None:
        """Read the slot map again; move every wanted channel that is not subscribed on its
        slot's master now; stop links left with no channel."""
        async with asyncio.timeout(self._timeout):
            await self._cluster.nodes_manager.initialize()
        if not self._mapped:
            log.info("cluster_reachable")
        self._mapped = True
        for channel in list(self._wanted):
            node = self._owner(channel)
            current = self._links.get(self._route.get(channel, ""))
            if current is not None and current is self._links.get(node.name):
                if channel in current.wanted:
                    continue
            elif current is not None:
                await current.unsubscribe(channel)
            self._route[channel] = node.name
            log.info("shard_channel_moved", channel=channel, node=node.name)
            await self._link(node).adopt(channel)
        masters = {node.name for node in self._cluster.get_primaries()}
        for name, link in list(self._links.items()):
            if not link.wanted or name not in masters:
                for channel in list(link.wanted):  # a replica now: the loop above moved them
                    link.wanted.discard(channel)
                del self._links[name]
                await link.stop()
