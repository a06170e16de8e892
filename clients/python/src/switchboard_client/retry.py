"""When to try a request again, and how long to wait first.

Reads are retried as they are. Writes are retried only because each carries an
`Idempotency-Key`, generated once per logical write and sent on every attempt:
the server applies a key's write at most once and answers its retries with the
first response, so a write whose answer was lost can be sent again safely.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

RETRIED_STATUSES = frozenset({429, 502, 503, 504})
"""Answers that change nothing: rate limited, and unavailable (ours or a proxy's)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A bounded retry budget: at most `attempts` tries in all and none started after
    `deadline` seconds; exponential backoff from `backoff` up to `max_backoff`, with
    jitter, except that a `Retry-After` from the server is waited exactly."""

    attempts: int = 10
    backoff: float = 0.2
    max_backoff: float = 5.0
    deadline: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based). Half the
        exponential step plus a random half ("equal jitter"): clients that failed together
        spread out, and each still waits long enough for a restart to finish."""
        if retry_after is not None:
            return retry_after
        step = min(self.max_backoff, self.backoff * 2.0 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


NO_RETRY = RetryPolicy(attempts=1)
"""One attempt: every failure is raised at once."""


class Budget:
    """One logical request's progress through a `RetryPolicy`."""

    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.attempt = 0
        self._ends = time.monotonic() + policy.deadline

    def next_delay(self, retry_after: float | None = None) -> float | None:
        """Count a failed attempt; how long to wait before the next, or None when the
        budget is spent (no attempt left, or the wait would end past the deadline)."""
        self.attempt += 1
        if self.attempt >= self.policy.attempts:
            return None
        wait = self.policy.delay(self.attempt, retry_after)
        return wait if time.monotonic() + wait <= self._ends else None


def retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def unsent(exc: httpx.TransportError) -> bool:
    """The request never reached the server (no connection was made): safe to resend even
    without a key. Any other transport failure may have happened after the server acted."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
