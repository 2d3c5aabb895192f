"""The request path's key lookup: one indexed query by public id, its rows hydrated into an
APIKey without the ORM's per-request cost, and an in-process cache of those rows so a busy
integration's requests cost no database round trip.

The cache puts safety first, because a stale entry would let a revoked key in:
- Before each read, ``sync`` applies every change other processes have announced
  (``changes``: the change file of this machine, and Redis pub/sub for other machines) and
  says whether the cache may be used at all. It is used when nothing can change a key behind
  its back: on SQLite (one machine: the change file reaches every process) or with Redis
  while the subscription answers. PostgreSQL without Redis may serve several machines that
  nothing would tell: no cache there.
- Every service that changes a key calls ``key_changed``: evicted here at once, announced to
  every process after commit.
- Unknown public ids are cached too (bounded), so a probe of a real id and of a made-up one
  cost the same; a key created with an id drops its entry everywhere.
- An entry loaded while a change arrived is not stored (generation check), and no entry lives
  longer than ``LOOKUP_CACHE_SECONDS`` (a backstop for changes made outside the services,
  e.g. by hand in SQL).
Expiry and grace ends need no invalidation: status is computed from the cached timestamps on
every request.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models.base import ModelState
from django.dispatch import receiver

from ..conf import key_settings
from ..models import APIKey
from . import changes

# Columns the request path needs; everything else on the key loads lazily if ever touched.
LOOKUP_FIELDS = (
    "id",
    "name",
    "public_id",
    "key_hash",
    "scopes",
    "expires_at",
    "expiry_policy",  # how an expired key's refusal words its expiry (``expiry_text``)
    "revoked_at",
    "grace_ends_at",
    "replaced_by_id",
    "lineage_root_id",
    "rate_limit_per_minute",
    "allowed_ips",
)
_DATETIME_FIELDS = frozenset({"expires_at", "revoked_at", "grace_ends_at"})
# The moments that end a key: APIKey.status_at is ACTIVE exactly while none of them has come.
_END_FIELDS = ("revoked_at", "grace_ends_at", "expires_at")

MAX_ENTRIES = 50_000
MAX_UNKNOWN = 10_000  # unknown ids, bounded apart so a flood of them never evicts real keys
UNKNOWN = object()  # the cached value of a public id no key has


class KeyCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the entries
        self._entries: dict[str, tuple[float, Any]] = {}
        self._unknown: dict[str, float] = {}
        self._generation = 0
        self._file = changes.ChangeFile()
        self._file_seen: bytes | None = None
        self._config: tuple[bool, str, str] | None = None
        self._max_age = 0.0  # LOOKUP_CACHE_SECONDS, read with the configuration
        self.subscription = changes.Subscription(self.evict)

    # --- request path ---------------------------------------------------------------------

    def config(self) -> tuple[bool, str, str]:
        """(cache on?, change file, Redis URL), worked out once per configuration."""
        if self._config is None:
            url = settings.REDIS_URL or ""
            sqlite = connections[DEFAULT_DB_ALIAS].vendor == "sqlite"
            path = key_settings.CHANGES_FILE or os.path.join(settings.VAR_DIR, "key-changes")
            self._max_age = float(key_settings.LOOKUP_CACHE_SECONDS)
            self._config = (bool(key_settings.LOOKUP_CACHE) and (sqlite or bool(url)), path, url)
        return self._config

    def sync(self) -> int | None:
        """Apply every change announced to this process. Returns the generation to store
        entries under, or None when the cache may not be used now."""
        on, path, url = self._config or self.config()
        if not on:
            return None
        state = self._file.read(path)
        if state is None:
            return None
        if state != self._file_seen:
            self.evict(None)
            self._file_seen = state
        if url and not self.subscription.listening(url):
            return None
        return self._generation

    def get(self, public_id: str) -> Any | None:
        """The cached row, UNKNOWN, or None (not cached). Call after ``sync``."""
        entry = self._entries.get(public_id)
        if entry is not None:
            stored_at, value = entry
        else:
            stored_at = self._unknown.get(public_id)
            if stored_at is None:
                return None
            value = UNKNOWN
        if time.monotonic() - stored_at > self._max_age:
            return None
        return value

    def put(self, public_id: str, value: Any, generation: int) -> None:
        """Store what was loaded, unless a change arrived since ``generation``."""
        with self._lock:
            if generation != self._generation:
                return
            now = time.monotonic()
            if value is UNKNOWN:
                if len(self._unknown) >= MAX_UNKNOWN:
                    del self._unknown[next(iter(self._unknown))]  # the oldest
                self._unknown[public_id] = now
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[public_id] = (now, value)

    # --- invalidation ---------------------------------------------------------------------

    def evict(self, public_id: str | None) -> None:
        """Forget one key (or all, with None) in this process."""
        with self._lock:
            self._generation += 1
            if public_id is None:
                self._entries.clear()
                self._unknown.clear()
            else:
                self._entries.pop(public_id, None)
                self._unknown.pop(public_id, None)

    def clear(self) -> None:
        self.evict(None)

    def reset(self) -> None:
        """Drop the subscription, the configuration and every entry (tests; settings changed)."""
        self.subscription.stop()
        self.subscription = changes.Subscription(self.evict)
        self._config, self._file_seen, self._file = None, None, changes.ChangeFile()
        self.clear()


cache = KeyCache()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in ("REDIS_URL", "API_KEYS", "DATABASES", "VAR_DIR"):
        cache.reset()


def key_changed(public_id: str, *, urgent: bool = True, what: str = "change") -> None:
    """Call from every service that changes (or creates) a key: evicted here now, announced to
    every process after commit. ``urgent`` for a change that takes rights away (see
    ``changes.announce``); ``what`` names it in a report."""
    cache.evict(public_id)

    def announce() -> None:
        cache.evict(public_id)
        _on, path, url = cache.config()
        changes.announce(public_id, path=path, url=url, urgent=urgent, what=what)

    transaction.on_commit(announce)


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
    cache when it may be used and is fresh, else the single query of the request path.
    Returns an APIKey whose other fields load lazily if ever touched, with ``works_until``: the
    moment (``time.time()`` seconds) its revocation, expiry or grace end takes effect, the
    earliest of them (``inf`` while none is set). Its status is ``ACTIVE`` exactly while
    ``time.time() < works_until``, which the request path checks without building a datetime."""
    generation = cache.sync()
    cached = cache.get(public_id) if generation is not None else None
    if cached is None:
        cached = _load(public_id, using) or UNKNOWN
        if generation is not None:
            cache.put(public_id, cached, generation)
    if cached is UNKNOWN:
        return None
    values, replacement_public_id, works_until = cached
    key = _hydrate(using, values)
    key.works_until = works_until
    if values["replaced_by_id"] is not None:
        # Fill the relation cache as select_related would, so key.replaced_by costs no query.
        replacement = _hydrate(
            using, {"id": values["replaced_by_id"], "public_id": replacement_public_id}
        )
        APIKey.replaced_by.field.set_cached_value(key, replacement)
    return key


def _load(public_id: str, using: str) -> tuple[dict[str, Any], str | None, float] | None:
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
    ends = [values[name].timestamp() for name in _END_FIELDS if values[name] is not None]
    return values, row[-1], min(ends, default=math.inf)


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
