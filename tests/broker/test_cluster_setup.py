"""The cluster URL, where a board's and a credential's keys land, and presence and rate
limits on a real cluster (no command may cross slots there)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import RedisCluster
from redis.crc import key_slot

from switchboard.auth.limits import RedisRateLimiter
from switchboard.broker import close_client, redis_client
from switchboard.broker.cluster import ClusterUrl
from switchboard.config import SettingsError, load_settings
from switchboard.names import channel_name, hash_tag
from switchboard.realtime.presence import RedisPresence
from tests.cluster import LocalCluster


def test_cluster_url_names_nodes_and_credentials() -> None:
    parsed = ClusterUrl.parse("redis+cluster://app:s%40cret@10.0.0.1:7000,redis-b:7001,[::1]:7002")
    assert parsed.nodes == (("10.0.0.1", 7000), ("redis-b", 7001), ("::1", 7002))
    assert (parsed.username, parsed.password) == ("app", "s@cret")
    assert ClusterUrl.parse("redis+cluster://h:1").nodes == (("h", 1),)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster://", "redis+cluster://host:port"),
        ("redis+cluster://host", "'host' is not host:port"),
        ("redis+cluster://a:7000,b", "'b' is not host:port"),
        ("redis+cluster://a:70000", "port 1-65535"),
        ("redis+cluster://a:7000/0", "redis+cluster://host:port"),
        ("rediscluster://a:7000", "redis+cluster://host:port"),
    ],
)
def test_a_bad_cluster_url_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("SWITCHBOARD_BROKER_URL", url)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert error.value.problems[0].startswith("SWITCHBOARD_BROKER_URL=")
    assert says in error.value.problems[0]


def test_a_cluster_prefix_holds_no_hash_tag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_BROKER_URL", "redis+cluster://a:7000")
    monkeypatch.setenv("SWITCHBOARD_BROKER_PREFIX", "team{1}:")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert error.value.problems == [
        "SWITCHBOARD_BROKER_PREFIX='team{1}:': may not hold { or } with a redis+cluster:// "
        "broker (a hash tag in the prefix would put every board in one slot)"
    ]
    monkeypatch.setenv("SWITCHBOARD_BROKER_URL", "redis://a:6379/0")
    assert load_settings().broker_prefix == "team{1}:"


def test_a_boards_keys_share_its_channels_slot() -> None:
    channel = channel_name("sales")
    slot = key_slot(f"deploy-a:{hash_tag(channel)}".encode())
    presence = RedisPresence.__new__(RedisPresence)
    presence._prefix = "deploy-b:"
    assert key_slot(presence._key(channel).encode()) == slot
    assert key_slot(f"deploy-a:rate:{hash_tag('key:7')}:1".encode()) == key_slot(b"{key:7}")


@pytest.fixture
async def cluster_client(redis_cluster: LocalCluster) -> AsyncIterator[RedisCluster]:
    client = redis_client(redis_cluster.url, timeout=2.0)
    assert isinstance(client, RedisCluster)
    await client.initialize()
    yield client
    await close_client(client)


async def test_presence_on_a_cluster(cluster_client: RedisCluster, prefix: str) -> None:
    """Writes (many boards' hashes in one pipeline), reads, keeps and heartbeats of boards on
    different masters, and the cleanup, through the cluster client."""
    one, other = RedisPresence(cluster_client, prefix, 5), RedisPresence(cluster_client, prefix, 5)
    boards = [channel_name(f"b{n}") for n in range(12)]  # spread over the three masters
    masters = {cluster_client.get_node_from_key(presence_key(prefix, b)) for b in boards}
    assert len(masters) > 1
    await one.write({key: {"anonymous": 2} for key in boards})  # one pipeline, three masters
    await other.write({key: {"key:1": 1} for key in boards})
    await one.write({boards[0]: {"anonymous": 1}})
    await one.keep(boards)
    assert one.worker in await one.alive()
    merged = await other.read(boards)
    assert merged[boards[0]] == {"anonymous": 1, "key:1": 1}
    assert all(merged[b] == {"anonymous": 2, "key:1": 1} for b in boards[1:])
    await one.close()
    assert (await other.read(boards[:1]))[boards[0]] == {"key:1": 1}
    await other.close()


def presence_key(prefix: str, channel: str) -> str:
    return f"{prefix}presence:{hash_tag(channel)}"


async def test_rate_limit_on_a_cluster(cluster_client: RedisCluster, prefix: str) -> None:
    limiter = RedisRateLimiter(20, cluster_client, prefix, healthy=lambda: True)
    window = int(time.time())
    admitted = [await limiter._admit("key:1", window) for _ in range(25)]
    assert admitted.count(True) == 20
    assert admitted[20:] == [False] * 5
