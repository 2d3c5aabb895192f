"""What a request with a valid key must still pass, and the gate in front of every key check.

- Browser use: a request with browser signals (``Origin``, ``Sec-Fetch-*``) is refused: keys
  are for server-to-server use, never in browser JavaScript (the admin manual).
- IP allowlist: an optional per-key list of ranges; refusals are counted in memory and
  written to the audit log in aggregate off the request path (``denials``), and each counts
  as a failure for the failure gate.
- Per-key rate limit: an optional requests-per-minute limit.
- Failure gate: a client address with too many failed authentications is refused before any
  lookup, except with a key already seen to work from it.

The counters are fixed windows. With Redis a counter is one atomic Lua call (INCR + EXPIRE), so
every process shares it and 50 concurrent requests at limit 10 let at most 10 through. Without
Redis (or when Redis does not answer) the processes of one machine share a counters file
(``counters``); if that file cannot be used, an in-process counter under a lock counts for this
process alone. After a Redis failure the circuit breaker of ``crm_keys.redis_client`` keeps the
requests off Redis for a few seconds instead of each waiting on it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import sqlite3
import threading
import time
from functools import lru_cache

import redis
from django.http import HttpRequest
from rest_framework.exceptions import PermissionDenied, Throttled

from crm_keys.net import limiter_bucket
from crm_keys.redis_client import get_redis, request_call

from .. import crypto, netrules
from ..conf import key_settings
from ..models import APIKey
from . import counters, denials

logger = logging.getLogger(__name__)

MSG_TOO_MANY_FAILURES = "Too many failed authentication attempts from your address."
MSG_BROWSER = (
    "API keys are for server-to-server use and are refused in browser requests: never expose a "
    "key in client-side code."
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


def count_hit(bucket: str, window: int = 60) -> tuple[int, int]:
    """Count one event in ``bucket``. Returns (events in this window so far, seconds until the
    window resets). Redis when configured; else (or when it does not answer) this machine's
    counters file; else this process."""
    now = time.time()
    window_id = int(now // window)
    retry_after = max(1, int(window - (now % window)) + 1)
    count = request_call(
        "a rate-limit count",
        lambda client: int(client.eval(_LUA_HIT, 1, f"icrm:rl:{bucket}:{window_id}", window + 1)),
    )
    if count is not None:
        return count, retry_after
    try:
        return counters.machine.hit(bucket, window_id, window), retry_after
    except sqlite3.Error as exc:
        logger.warning("rate limit falls back to in-process counters: %r", exc)
    return _local.hit(bucket, window_id), retry_after


def hit(bucket: str, limit: int, window: int = 60) -> tuple[bool, int]:
    """Count one event in ``bucket``. Returns (allowed, seconds until the window resets)."""
    count, retry_after = count_hit(bucket, window)
    return count <= limit, retry_after


class FailureGate:
    """Throttles a client address (``crm_keys.net.limiter_bucket``) whose failed
    authentications exceed the limit, without shutting out the keys that work from it.

    While an address is throttled, a request goes on to the key check only with a key already
    seen to verify *from that address* (``_known_good``: address and public id -> a tag of the
    key's hash, compared with the presented key's in memory); everything else gets 429 before
    any lookup, so the flood costs no query. A known-good key that then fails (revoked
    meanwhile) is forgotten. With Redis, each process's shipper thread publishes what it
    learned (``publish_known_good``, a hash per address, a day's TTL) and a process loads an
    address's entries when it starts throttling it, so a process that never saw a key work
    (started during the flood) still serves it. The check on every request is a dict lookup;
    only failures touch the shared counter."""

    MAX_KNOWN_GOOD = 50_000
    SHARED_TTL = 86400

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocked: dict[str, float] = {}
        self._known_good: dict[tuple[str, str], str] = {}
        self._unpublished: set[tuple[str, str]] = set()

    def retry_after(self, bucket: str) -> int | None:
        until = self._blocked.get(bucket)
        if until is None:
            return None
        remaining = until - time.time()
        if remaining <= 0:
            with self._lock:
                self._blocked.pop(bucket, None)
            return None
        return max(1, int(remaining + 0.999))

    def record_failure(self, bucket: str) -> int | None:
        """Count a failure; returns Retry-After seconds when the address is now over the limit."""
        limit = key_settings.AUTH_FAILURES_PER_MINUTE
        allowed, retry_after = hit(f"authfail:{bucket}", limit, 60)
        if allowed:
            return None
        newly = bucket not in self._blocked
        with self._lock:
            if len(self._blocked) > 100_000:
                self._blocked.clear()
            self._blocked[bucket] = time.time() + retry_after
        if newly:
            self._load_shared(bucket)
        return retry_after

    def is_known_good(self, bucket: str, public_id: str, raw_key: str) -> bool:
        stored = self._known_good.get((bucket, public_id))
        return stored is not None and hmac.compare_digest(_tag(crypto.hash_key(raw_key)), stored)

    def remember_good(self, bucket: str, key: APIKey) -> None:
        entry, tag = (bucket, key.public_id), _tag(key.key_hash)
        if self._known_good.get(entry) == tag:
            return
        with self._lock:
            if len(self._known_good) >= self.MAX_KNOWN_GOOD:
                self._known_good.clear()
            self._known_good[entry] = tag
            if len(self._unpublished) < self.MAX_KNOWN_GOOD:
                self._unpublished.add(entry)

    def forget(self, bucket: str, public_id: str) -> None:
        with self._lock:
            known = self._known_good.pop((bucket, public_id), None) is not None
            self._unpublished.discard((bucket, public_id))
        if not known:
            # Not known here, so nothing to take back: a refused revoked or expired key costs
            # one Redis round trip (its failure count), not two. A shared entry another process
            # published is dropped by the process that loads it and sees it fail.
            return
        # On failure the entry expires; a revoked key fails its lookup anyway.
        request_call(
            "forgetting a known-good key",
            lambda client: client.hdel(f"icrm:authok:{bucket}", public_id),
        )

    def publish_known_good(self, *, final: bool = False) -> None:
        """Off the request path (the usage shipper's hook): share what this process learned."""
        client = get_redis()
        if client is None or not self._unpublished:
            return
        with self._lock:
            entries = {e: self._known_good[e] for e in self._unpublished if e in self._known_good}
            self._unpublished.clear()
        try:
            pipe = client.pipeline(transaction=False)
            for (bucket, public_id), tag in entries.items():
                pipe.hset(f"icrm:authok:{bucket}", public_id, tag)
                pipe.expire(f"icrm:authok:{bucket}", self.SHARED_TTL)
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning("could not share known-good keys: %s", type(exc).__name__)
            with self._lock:
                self._unpublished.update(entries)

    def _load_shared(self, bucket: str) -> None:
        """Once per throttling of an address in this process: the keys other processes have
        seen work from it (one round trip, on the failure that started the throttle)."""
        shared = request_call(
            "loading known-good keys", lambda client: client.hgetall(f"icrm:authok:{bucket}")
        )
        if not shared:
            return
        with self._lock:
            for public_id, tag in list(shared.items())[:1000]:
                self._known_good[(bucket, public_id.decode())] = tag.decode()

    def clear(self) -> None:
        with self._lock:
            self._blocked.clear()
            self._known_good.clear()
            self._unpublished.clear()


@lru_cache(maxsize=65536)
def _tag(key_hash: str) -> str:
    """What the gate keeps of a key: a hash of its hash (not the stored hash itself)."""
    return hashlib.sha256(b"crm-keys known good:" + key_hash.encode()).hexdigest()[:32]


failures = FailureGate()


def reset_local_state() -> None:
    """Forget in-process counters, throttled addresses, known-good keys and uncounted
    allowlist refusals (tests)."""
    _local.clear()
    counters.machine.clear()
    failures.clear()
    denials.reset()


# --- the per-key rules ----------------------------------------------------------------------


def enforce_key_rules(request: HttpRequest, key: APIKey, ip: str | None) -> None:
    """Per-key protections, after the key is known to be valid: browser use, IP allowlist,
    rate limit."""
    meta = request.META
    if (
        "HTTP_ORIGIN" in meta
        or meta.get("HTTP_SEC_FETCH_MODE") == "cors"
        or meta.get("HTTP_SEC_FETCH_SITE") == "cross-site"
    ):
        raise PermissionDenied(MSG_BROWSER)
    if key.allowed_ips and not netrules.ip_allowed(ip, _networks(key.allowed_ips)):
        # Counted here, written to the audit log by the shipper thread (never the request's
        # job: that would wait on the audit chain's lock), and a failure for the limiter.
        denials.record(key, ip, request.META.get("HTTP_USER_AGENT", ""))
        failures.record_failure(limiter_bucket(ip))
        raise PermissionDenied(MSG_IP_DENIED.format(ip=ip or "unknown"))
    if key.rate_limit_per_minute:
        limit = key.rate_limit_per_minute
        # One bucket per rotation lineage: the old key and its replacement share the limit.
        count, reset = count_hit(f"key:{key.lineage_id}", 60)
        request.rate_limit = (limit, max(0, limit - count), reset)  # the RateLimit-* headers
        if count > limit:
            raise Throttled(
                wait=reset,
                detail=f"Rate limit of {limit} requests per minute exceeded for this API key.",
            )


@lru_cache(maxsize=1024)
def _networks(text: str) -> list:
    return netrules.parse_networks(text)
