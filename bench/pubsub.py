"""What Redis says about the server's subscriptions: which of its connections belong to
which worker process (matched through /proc by the connection's local port), and how many
channels each holds; on a cluster, which master carries which board channels."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import redis

from switchboard.broker import client_name


def command(node: redis.Redis, *args: Any) -> Any:
    """One command to one node (redis-py leaves `execute_command` untyped)."""
    return node.execute_command(*args)  # type: ignore[no-untyped-call]


def _socket_ports() -> dict[int, int]:
    """Every TCP socket's inode → its local port (this network namespace's, IPv4 and 6)."""
    ports: dict[int, int] = {}
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            ports[int(fields[9])] = int(fields[1].rsplit(":", 1)[1], 16)
    return ports


def worker_ports(workers: list[int]) -> dict[int, int]:
    """Local port → worker pid, for every TCP socket a worker holds open."""
    inodes = _socket_ports()
    owner: dict[int, int] = {}
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                port = inodes.get(int(target[8:-1]))
                if port is not None:
                    owner[port] = pid
    return owner


def subscriptions(
    nodes: list[redis.Redis], prefix: str, workers: list[int], sharded: bool
) -> dict[str, Any]:
    """Per worker, the channels its connections to `nodes` hold (`CLIENT LIST`'s sub= and
    ssub=), and the distinct channels Redis knows under the deployment's `prefix`
    (`PUBSUB CHANNELS`, or `SHARDCHANNELS` on a cluster's masters)."""
    owner = worker_ports(workers)
    name = client_name(prefix)
    held: Counter[int] = Counter()
    links: Counter[int] = Counter()
    channels = 0
    for node in nodes:
        for client in node.client_list():
            if client.get("name") != name:
                continue
            pid = owner.get(int(client["addr"].rsplit(":", 1)[1]), 0)
            count = int(client.get("sub", 0)) + int(client.get("ssub", 0))
            if count:
                held[pid] += count
                links[pid] += 1
        verb = "SHARDCHANNELS" if sharded else "CHANNELS"
        channels += len(command(node, "PUBSUB", verb, prefix + "*"))
    return {
        "redis_channels": channels,
        "redis_subscriptions_per_worker": [held[pid] for pid in workers],
        "redis_subscriber_connections_per_worker": [links[pid] for pid in workers],
        "redis_subscriptions_unmatched": held[0],
    }


def shard_placement(masters: list[redis.Redis], prefix: str) -> dict[str, Any]:
    """Per master, its shard channels (`PUBSUB SHARDCHANNELS`), and how many of them hash
    (`CLUSTER KEYSLOT`) to a slot that master does not own: 0 when each master carries
    only its own slots' channels."""
    counts, mismatched = [], 0
    for master in masters:
        me = command(master, "CLUSTER", "MYID")
        me = me.decode() if isinstance(me, bytes) else me
        owned: list[tuple[int, int]] = []
        for start, end, node, *_ in command(master, "CLUSTER", "SLOTS"):
            node_id = node[2].decode() if isinstance(node[2], bytes) else node[2]
            if node_id == me:
                owned.append((int(start), int(end)))
        names = command(master, "PUBSUB", "SHARDCHANNELS", prefix + "*")
        counts.append(len(names))
        for channel in names:
            slot = int(command(master, "CLUSTER", "KEYSLOT", channel))
            mismatched += not any(start <= slot <= end for start, end in owned)
    return {"shard_channels_per_master": counts, "shard_channels_on_wrong_master": mismatched}
