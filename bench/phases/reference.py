"""The reference: a bare loop writing one pre-encoded frame to plain loopback TCP sockets,
the CPU floor of a delivery, which the fan-out phases are given as a multiple of. Last,
with no server running."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time

from bench.measure import raise_fd_limit
from bench.phase import Phase
from bench.runner import Run

NAME = "reference: bare socket writes"


def run(context: Run) -> list[Phase]:
    return [measure(100, 50) if context.quick else measure(1000, 200)]


def relate(phases: list[Phase]) -> None:
    """Give each fan-out and saturation phase its CPU per delivery as a multiple of the
    reference's (`x_reference_cpu`), when the run measured one."""
    ref = next((p.server_cpu_us_per_delivery for p in phases if p.name.startswith(NAME)), 0.0)
    for p in phases:
        if p.deliveries and p.name.startswith(("fan-out", "saturation")) and ref:
            p.extra["x_reference_cpu"] = round(p.server_cpu_us_per_delivery / ref, 1)


def measure(subscribers: int, frames: int) -> Phase:
    """A bare loop writing one pre-encoded frame to N plain loopback TCP sockets: the floor.

    A thread drains the far ends; only the writing thread's CPU time is counted.
    """
    raise_fd_limit()
    frame = b"\x81\x7e\x00\xc8" + b"x" * 200  # a 200-byte WebSocket text frame
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(subscribers)
    writers, readers = [], []
    for _ in range(subscribers):
        writers.append(socket.create_connection(listener.getsockname()))
        readers.append(listener.accept()[0])
    stop = threading.Event()

    def drain() -> None:
        selector = selectors.DefaultSelector()
        for sock in readers:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(0.1):
                with contextlib.suppress(BlockingIOError):
                    key.fileobj.recv(1 << 16)  # type: ignore[union-attr]

    sink = threading.Thread(target=drain)
    sink.start()
    cpu0 = time.thread_time()
    for _ in range(frames):
        for sock in writers:
            sock.sendall(frame)
    cpu = time.thread_time() - cpu0
    stop.set()
    sink.join()
    for sock in writers + readers:
        sock.close()
    listener.close()
    return Phase(
        name=f"{NAME} x{subscribers}",
        subscribers=subscribers,
        deliveries=frames * subscribers,
        server_cpu_us_per_delivery=round(cpu / (frames * subscribers) * 1e6, 2),
    )
