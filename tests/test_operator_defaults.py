"""What an operator gets without asking: health probes that answer HEAD as load balancers
send it, and a shipped nginx configuration that does not serve `/metrics` to the world."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.helpers import LiveServer

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


async def _raw(base_url: str, method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    """One request on its own connection, read to the end: the status line, the headers
    and every byte after them (a HEAD answer must have none)."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(-1), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines)}
    return status, headers, body


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_head_probes_answer_like_get_without_a_body(server: LiveServer, path: str) -> None:
    get_status, get_headers, get_body = await _raw(server.base_url, "GET", path)
    head_status, head_headers, head_body = await _raw(server.base_url, "HEAD", path)
    assert get_status == head_status == "HTTP/1.1 200 OK"
    assert get_body  # GET has one …
    assert head_body == b""  # … HEAD does not
    assert head_headers["content-type"] == get_headers["content-type"]
    assert head_headers["content-length"] == get_headers["content-length"] == str(len(get_body))


def _locations(conf: str) -> dict[str, str]:
    """Each `location` block's matcher (`= /ws`, `~ ^/metrics…`, `/`) → its body."""
    return {
        match.group(1).strip(): match.group(2)
        for match in re.finditer(r"^\s*location\s+([^{]+)\{(.*?)^\s*\}", conf, re.M | re.S)
    }


def _serving(locations: dict[str, str], path: str) -> str:
    """The matcher nginx picks for `path`: exact, then regexes in order, then the
    longest prefix (enough for this file: no `^~`)."""
    if f"= {path}" in locations:
        return f"= {path}"
    for matcher in locations:
        if matcher.startswith("~") and re.search(matcher.split(None, 1)[1], path):
            return matcher
    prefixes = [m for m in locations if not m.startswith(("=", "~")) and path.startswith(m)]
    return max(prefixes, key=len)


def test_nginx_denies_metrics_to_everyone_by_default() -> None:
    conf = "\n".join(line.split("#", 1)[0] for line in NGINX_CONF.read_text().splitlines())
    locations = _locations(conf)
    assert "proxy_pass" in locations["/"]  # the parser found the blocks
    for path in ("/metrics", "/metrics/", "/metrics/x"):
        body = locations[_serving(locations, path)]
        directives = [d.strip() for d in body.split(";") if d.strip()]
        assert directives[-1] == "deny all", (path, directives)  # nothing allowed after it
        assert "allow all" not in directives
        assert not any(d.startswith("proxy_pass") for d in directives), directives
    for path in ("/api/boards", "/metricsx", "/healthz"):  # the rest still reaches the app
        assert "proxy_pass" in locations[_serving(locations, path)]
