"""The load generator's HTTP client."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from bench.env import KEY


class Http1:
    """A keep-alive HTTP/1.1 connection that costs the load generator little: its CPU is
    taken from the server's two cores, and httpx's per-request Python is several times
    this. Enough for these requests: a JSON body out, a `content-length` response back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n".encode()

    @classmethod
    async def open(cls, url: str) -> Http1:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        payload = orjson.dumps(body)
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self.head
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()
