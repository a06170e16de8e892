"""The naming rules: what a slug may be, and how a board's channel is named.

A slug names a board in REST paths and in channels, and a widget key follows the same
rule. The REST API, the WebSocket protocol and both API descriptions read them here.
Imports nothing of the package: every layer may use it.
"""

from __future__ import annotations

import re

SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{0,63}"
"""A board slug or widget key, unanchored (anchor it, or compose it into a larger rule)."""

CHANNEL_PREFIX = "board:"
"""A board's channel is `board:<slug>`, on the broker and in the WebSocket protocol."""

CHANNEL_PATTERN = rf"{CHANNEL_PREFIX}{SLUG_PATTERN}"
"""A board channel's name, unanchored."""

_CHANNEL = re.compile(rf"{CHANNEL_PREFIX}({SLUG_PATTERN})")


def channel_name(slug: str) -> str:
    """The channel of the board `slug`."""
    return f"{CHANNEL_PREFIX}{slug}"


def channel_slug(channel: str) -> str | None:
    """The slug of a board channel's name; None when `channel` is not one (what a client
    sends is checked here)."""
    match = _CHANNEL.fullmatch(channel)
    return match.group(1) if match is not None else None


def slug_of(channel: str) -> str:
    """The slug of a channel named by `channel_name` (checked already: not again)."""
    return channel.removeprefix(CHANNEL_PREFIX)


def hash_tag(name: str) -> str:
    """`{name}`: in a Redis key or sharded channel, a cluster hashes only this part, so every
    key of one board (its channel, its presence) or one credential lands in one slot. A slug
    holds no braces, so the tag is the whole name."""
    return f"{{{name}}}"
