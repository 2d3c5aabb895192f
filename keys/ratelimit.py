"""Fixed-window rate limits: per client IP for failed authentications, and the optional per-key
requests-per-minute limit.

With Redis the counter is one atomic Lua call (INCR + EXPIRE), so every process shares it and
50 concurrent requests at limit 10 let at most 10 through. Without Redis (or when Redis does not
answer) an in-process counter under a lock does the same job for this process.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings

from crm_keys.redis_client import get_redis

logger = logging.getLogger(__name__)

_LUA_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""


class _LocalCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, int]] = {}  # bucket -> (window id, count)

    def hit(self, bucket: str, window_id: int) -> int:
        with self._lock:
            wid, count = self._counts.get(bucket, (window_id, 0))
            if wid != window_id:
                count = 0
            count += 1
            self._counts[bucket] = (window_id, count)
            if len(self._counts) > 100_000:  # bounded memory under a flood of distinct buckets
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window_id}
            return count

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


_local = _LocalCounters()


def hit(bucket: str, limit: int, window: int = 60) -> tuple[bool, int]:
    """Count one event in ``bucket``. Returns (allowed, seconds until the window resets)."""
    now = time.time()
    window_id = int(now // window)
    retry_after = max(1, int(window - (now % window)) + 1)
    client = get_redis()
    count = None
    if client is not None:
        try:
            count = int(client.eval(_LUA_HIT, 1, f"icrm:rl:{bucket}:{window_id}", window + 1))
        except redis.RedisError as exc:
            logger.warning("rate limit falls back to in-process counters: %s", type(exc).__name__)
    if count is None:
        count = _local.hit(bucket, window_id)
    return count <= limit, retry_after


class FailureGate:
    """Blocks a client IP whose failed authentications exceed the limit. The check on every
    request is a dict lookup (no I/O); only failures touch the shared counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocked: dict[str, float] = {}

    def retry_after(self, ip: str | None) -> int | None:
        if ip is None:
            return None
        until = self._blocked.get(ip)
        if until is None:
            return None
        remaining = until - time.time()
        if remaining <= 0:
            with self._lock:
                self._blocked.pop(ip, None)
            return None
        return max(1, int(remaining + 0.999))

    def record_failure(self, ip: str | None) -> int | None:
        """Count a failure; returns Retry-After seconds when the IP is now over the limit."""
        if ip is None:
            return None
        limit = settings.API_KEYS["AUTH_FAILURES_PER_MINUTE"]
        allowed, retry_after = hit(f"authfail:{ip}", limit, 60)
        if allowed:
            return None
        with self._lock:
            if len(self._blocked) > 100_000:
                self._blocked.clear()
            self._blocked[ip] = time.time() + retry_after
        return retry_after

    def clear(self) -> None:
        with self._lock:
            self._blocked.clear()


failures = FailureGate()


def reset_local_state() -> None:
    """Forget in-process counters (tests)."""
    _local.clear()
    failures.clear()
