"""What a request with a valid key must still pass, and the gate in front of every key check.

- Browser use: a request with browser signals (``Origin``, ``Sec-Fetch-*``) is refused unless
  the key allows that origin: keys are for server-to-server use.
- IP allowlist: an optional per-key list of ranges; a refusal writes one audit entry per key,
  address and day (the refusal path only: accepted requests never write).
- Per-key rate limit: an optional requests-per-minute limit.
- Failure gate: a client IP with too many failed authentications is refused before any lookup.

The counters are fixed windows. With Redis a counter is one atomic Lua call (INCR + EXPIRE), so
every process shares it and 50 concurrent requests at limit 10 let at most 10 through. Without
Redis (or when Redis does not answer) an in-process counter under a lock does the same job for
this process.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache

import redis
from django.http import HttpRequest
from django.utils import timezone
from rest_framework.exceptions import PermissionDenied, Throttled

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from audit.services import audit_record
from crm_keys.redis_client import get_redis

from .. import netrules
from ..conf import key_settings
from ..models import APIKey

logger = logging.getLogger(__name__)

MSG_TOO_MANY_FAILURES = "Too many failed authentication attempts from your address."
MSG_BROWSER = (
    "API keys are for server-to-server use and are refused in browser requests: never expose a "
    "key in client-side code. (An admin can allow specific origins on the key.)"
)
MSG_IP_DENIED = "This API key may not be used from your address ({ip})."

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
        limit = key_settings.AUTH_FAILURES_PER_MINUTE
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
    """Forget in-process counters and denial markers (tests)."""
    _local.clear()
    failures.clear()
    with _denials_lock:
        _denials_seen.clear()


# --- the IP allowlist's audit entries ---------------------------------------------------------

_denials_seen: set[tuple[int, str, str]] = set()
_denials_lock = threading.Lock()


def record_ip_denial(key: APIKey, ip: str | None, request: HttpRequest) -> None:
    day = timezone.localdate().isoformat()
    marker = (key.pk, ip or "", day)
    with _denials_lock:
        if marker in _denials_seen:
            return
        if len(_denials_seen) > 50_000:
            _denials_seen.clear()
        _denials_seen.add(marker)
    message = f"request from {ip or 'unknown address'} refused: not in the key's IP allowlist"
    already = AuditEntry.objects.filter(
        action=AuditAction.ACCESS_DENIED,
        key_id=key.pk,
        created_at__date=timezone.localdate(),
        message=message,
    ).exists()
    if not already:
        audit_record(
            action=AuditAction.ACCESS_DENIED,
            actor=Actor(
                label=f"api-key:{key.public_id}",
                ip=ip,
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            ),
            key=key,
            message=message,
        )


# --- the per-key rules ----------------------------------------------------------------------


def enforce_key_rules(request: HttpRequest, key: APIKey, ip: str | None) -> None:
    """Per-key protections, after the key is known to be valid: browser use, IP allowlist,
    rate limit."""
    meta = request.META
    origin = meta.get("HTTP_ORIGIN")
    if (
        origin is not None
        or meta.get("HTTP_SEC_FETCH_MODE") == "cors"
        or meta.get("HTTP_SEC_FETCH_SITE") == "cross-site"
    ) and (origin is None or origin.strip() not in key.allowed_origins.split()):
        raise PermissionDenied(MSG_BROWSER)
    if key.allowed_ips and not netrules.ip_allowed(ip, _networks(key.allowed_ips)):
        record_ip_denial(key, ip, request)
        raise PermissionDenied(MSG_IP_DENIED.format(ip=ip or "unknown"))
    if key.rate_limit_per_minute:
        allowed, retry_after = hit(f"key:{key.pk}", key.rate_limit_per_minute, 60)
        if not allowed:
            raise Throttled(
                wait=retry_after,
                detail=f"Rate limit of {key.rate_limit_per_minute} requests per minute exceeded for this API key.",
            )


@lru_cache(maxsize=1024)
def _networks(text: str) -> list:
    return netrules.parse_networks(text)
