"""The request path's key lookup: one indexed query by public id, its rows hydrated into an
APIKey without the ORM's per-request cost, and an in-process cache of those rows so a busy
integration's requests cost no database round trip.

The cache puts safety first, because a stale entry would let a revoked key in:
- It is on only with Redis (``LOOKUP_CACHE`` and REDIS_URL): every process subscribes
  to the ``icrm:keys:changed`` channel and, before each cache read, applies the messages that
  have arrived (a non-blocking socket read on the request thread: no round trip).
- Every service that changes a key evicts it in its own process at once and, after commit,
  publishes its public id, so the other processes evict it before their next request.
- While the process is not subscribed (starting, Redis down, retrying) the cache is not
  used at all: requests go to the database. On (re)subscribing the cache starts empty, since
  messages may have been missed.
- An entry loaded while an invalidation arrived is not stored (generation check), and no entry
  lives longer than ``LOOKUP_CACHE_SECONDS`` (a backstop for changes made outside the
  services, e.g. by hand in SQL).
Expiry and grace ends need no invalidation: status is computed from the cached timestamps on
every request.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.base import ModelState

from crm_keys.redis_client import get_redis

from ..conf import key_settings
from ..models import APIKey

logger = logging.getLogger(__name__)

# Columns the request path needs; everything else on the key loads lazily if ever touched.
LOOKUP_FIELDS = (
    "id",
    "name",
    "public_id",
    "key_hash",
    "scopes",
    "expires_at",
    "revoked_at",
    "grace_ends_at",
    "replaced_by_id",
    "rate_limit_per_minute",
    "allowed_ips",
)
_DATETIME_FIELDS = frozenset({"expires_at", "revoked_at", "grace_ends_at"})

CHANNEL = "icrm:keys:changed"
MAX_ENTRIES = 50_000


class KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the entries
        self._sync_lock = threading.Lock()  # guards the subscription
        self._entries: dict[str, tuple[float, Any]] = {}
        self._generation = 0
        self._pubsub: Any = None
        self._pid: int | None = None
        self._retry_at = 0.0

    # --- request path ---------------------------------------------------------------------

    def enabled(self) -> bool:
        return bool(key_settings.LOOKUP_CACHE) and bool(settings.REDIS_URL)

    def get(self, public_id: str) -> Any | None:
        if not self.enabled() or not self._sync():
            return None
        entry = self._entries.get(public_id)
        if entry is None:
            return None
        stored_at, value = entry
        if time.monotonic() - stored_at > key_settings.LOOKUP_CACHE_SECONDS:
            return None
        return value

    def generation(self) -> int:
        return self._generation

    def put(self, public_id: str, value: Any, generation: int) -> None:
        """Store what was loaded, unless an invalidation arrived since ``generation``."""
        if self._pubsub is None:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[public_id] = (time.monotonic(), value)

    def _sync(self) -> bool:
        """Apply every invalidation that has reached this process; True when the cache may be
        used. Runs on the request thread itself (a non-blocking read of the subscription
        socket, no round trip), so a message that arrived before the request started is always
        applied before the request looks at the cache."""
        with self._sync_lock:
            if self._pid != os.getpid():  # a forked worker must open its own subscription
                self._pid, self._pubsub, self._retry_at = os.getpid(), None, 0.0
                self.clear()
            if self._pubsub is None and not self._subscribe():
                return False
            try:
                while True:
                    message = self._pubsub.get_message(timeout=0)
                    if message is None:
                        return True
                    if message["type"] == "message":
                        data = message["data"]
                        self.evict(data.decode() if data != b"*" else None)
            except Exception as exc:  # any failure: stop using the cache, resubscribe later
                self._drop(exc)
                return False

    def _subscribe(self) -> bool:
        if time.monotonic() < self._retry_at:
            return False
        try:
            client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_connect_timeout=0.25,
                socket_timeout=0.25,
                health_check_interval=15,
            )
            pubsub = client.pubsub()
            pubsub.subscribe(CHANNEL)
            confirmation = pubsub.get_message(timeout=0.25)
            if confirmation is None or confirmation["type"] != "subscribe":
                raise redis.ConnectionError("no subscription confirmation")
        except Exception as exc:  # Redis down or slow: the database serves every lookup
            self._drop(exc)
            return False
        self.clear()  # anything could have changed while we were not subscribed
        self._pubsub = pubsub
        return True

    def _drop(self, exc: Exception) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail too
                self._pubsub.close()
        self._pubsub = None
        self._retry_at = time.monotonic() + 5
        self.clear()
        logger.warning("key cache off (%s): lookups go to the database", type(exc).__name__)

    # --- invalidation ---------------------------------------------------------------------

    def evict(self, public_id: str | None) -> None:
        """Forget one key (or all, with None) in this process."""
        with self._lock:
            self._generation += 1
            if public_id is None:
                self._entries.clear()
            else:
                self._entries.pop(public_id, None)

    def clear(self) -> None:
        self.evict(None)

    def reset(self) -> None:
        """Drop the subscription and every entry (the next use subscribes afresh)."""
        with self._sync_lock:
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    self._pubsub.close()
            self._pubsub, self._retry_at = None, 0.0
            self.clear()


cache = KeyCache()


def key_changed(public_id: str) -> None:
    """Call from every service that changes a key: evict here now, and everywhere after commit."""
    cache.evict(public_id)

    def publish() -> None:
        cache.evict(public_id)
        client = get_redis()
        if client is None:
            return
        try:
            client.publish(CHANNEL, public_id)
        except redis.RedisError as exc:
            logger.warning(
                "could not publish a key change (%s); other processes drop it within %ss",
                type(exc).__name__,
                key_settings.LOOKUP_CACHE_SECONDS,
            )

    transaction.on_commit(publish)


# --- the lookup ---------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _lookup_sql(alias: str) -> str:
    """The lookup's SQL, compiled once by the ORM for this database (so quoting and the join
    are the backend's own), then reused: building a queryset costs ~30x the query itself."""
    query = (
        APIKey.objects.using(alias)
        .filter(public_id="?")
        .values_list(*LOOKUP_FIELDS, "replaced_by__public_id")
    )
    sql, params = query.query.sql_with_params()
    assert params == ("?",)
    return sql


def _aware(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite without declared-type conversion
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def lookup(public_id: str, *, using: str = DEFAULT_DB_ALIAS) -> APIKey | None:
    """The key (with its replacement's public id) by its indexed public id: from the in-process
    cache when it is on and fresh, else the single query of the request path.
    Returns an APIKey whose other fields load lazily if ever touched."""
    cached = cache.get(public_id)
    if cached is None:
        generation = cache.generation()
        cached = _load(public_id, using)
        if cached is None:
            return None
        cache.put(public_id, cached, generation)
    values, replacement_public_id = cached
    key = _hydrate(using, values)
    if values["replaced_by_id"] is not None:
        # Fill the relation cache as select_related would, so key.replaced_by costs no query.
        replacement = _hydrate(
            using, {"id": values["replaced_by_id"], "public_id": replacement_public_id}
        )
        APIKey.replaced_by.field.set_cached_value(key, replacement)
    return key


def _load(public_id: str, using: str) -> tuple[dict[str, Any], str | None] | None:
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(using), [public_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(LOOKUP_FIELDS, row, strict=False))
    if isinstance(values["scopes"], str):
        values["scopes"] = json.loads(values["scopes"])
    for name in _DATETIME_FIELDS:
        values[name] = _aware(values[name])
    return values, row[-1]


def _hydrate(using: str, values: dict[str, Any]) -> APIKey:
    """An APIKey loaded from the database with only ``values``, as Model.from_db would make it,
    but without running __init__ over every field (a third of the lookup's cost). Fields not
    given are deferred: Django loads them on first access."""
    key = APIKey.__new__(APIKey)
    key._state = ModelState()
    key._state.adding = False
    key._state.db = using
    key.__dict__.update(values)
    if "scopes" in values:
        key.scopes = {m: list(a) for m, a in values["scopes"].items()}  # never share a cached dict
    return key
