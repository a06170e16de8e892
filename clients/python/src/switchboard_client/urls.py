"""The server's address as people type it: `localhost:8000` means `http://localhost:8000`."""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("http", "https")


def server_url(url: str) -> str:
    """`url` with a scheme (http:// when it has none) and no trailing slash; a ValueError
    for any scheme but http and https, or no host."""
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme.lower() not in SCHEMES:
        raise ValueError(f"{url!r}: a Switchboard server's URL starts with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host (for example http://127.0.0.1:8000)")
    return text.rstrip("/")
