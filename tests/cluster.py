"""A throwaway Redis Cluster on loopback: 3 masters + 3 replicas, each a `redis-server`
subprocess this test run owns, with the faults the cluster tests inject (a master killed,
a slot moved, a node restarted, every node frozen)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.helpers import free_port, spawn_redis

NODE_COUNT = 6
NODE_TIMEOUT_MS = 1000
"""How long a master may be silent before its replica takes over (Redis's default: 15 s)."""


@dataclass
class ClusterNode:
    """One `redis-server --cluster-enabled yes` process."""

    port: int
    bus_port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = spawn_redis(
            self.port,
            *("--cluster-enabled", "yes", "--cluster-port", str(self.bus_port)),
            *("--cluster-config-file", str(self.workdir / f"nodes-{self.port}.conf")),
            *("--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--dir", str(self.workdir)),
        )

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def info(self) -> dict[str, str]:
        with self.client() as r:
            text = r.execute_command("CLUSTER", "INFO").decode()
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    @property
    def node_id(self) -> str:
        with self.client() as r:
            return str(r.execute_command("CLUSTER", "MYID").decode())


class LocalCluster:
    """Six nodes made into a cluster by `redis-cli --cluster create`."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="sb-cluster-"))
        ports: set[int] = set()
        while len(ports) < 2 * NODE_COUNT:  # two picks may return one port: not bound yet
            ports.add(free_port())
        picked = sorted(ports)
        self.nodes = [
            ClusterNode(picked[2 * n], picked[2 * n + 1], self.workdir) for n in range(NODE_COUNT)
        ]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes[:3])

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                *("redis-cli", "--cluster", "create"),
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                *("--cluster-replicas", "1", "--cluster-yes"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.wait_ok()

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def live(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None]

    def wait_ok(self, timeout: float = 30.0) -> float:
        """Wait until every live node says `cluster_state:ok` and agrees on the masters;
        the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with contextlib.suppress(redis.RedisError, OSError):
                if all(n.info().get("cluster_state") == "ok" for n in self.live()):
                    return time.monotonic() - start
            time.sleep(0.05)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def wait_promoted(self, slot: int, old: ClusterNode, timeout: float = 30.0) -> float:
        """Wait until another node serves `slot` and the cluster is ok; the seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            with contextlib.suppress(redis.RedisError, OSError):
                if self.owner(slot) is not old:
                    self.wait_ok(timeout - (time.monotonic() - start))
                    return time.monotonic() - start
            time.sleep(0.05)
        raise RuntimeError(f"no replica took slot {slot} over")

    def owner(self, slot: int) -> ClusterNode:
        """The master serving `slot`, as the live nodes see it now."""
        with self.live()[0].client() as r:
            for start, end, master, *_ in r.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(slot)

    def masters(self) -> list[ClusterNode]:
        with self.live()[0].client() as r:
            ports = {int(m[1]) for _, _, m, *_ in r.execute_command("CLUSTER", "SLOTS")}
        return [n for n in self.nodes if n.port in ports]

    def move_slot(self, slot: int, target: ClusterNode) -> None:
        """Migrate `slot` with its keys to `target`, as `redis-cli --cluster reshard` does."""
        source = self.owner(slot)
        source_id, target_id = source.node_id, target.node_id
        with target.client() as t, source.client() as s:
            t.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            while keys := s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                s.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            t.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            s.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
            for node in self.masters():
                if node not in (source, target):
                    with node.client() as other:
                        other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
