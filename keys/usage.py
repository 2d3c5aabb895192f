"""Usage tracking: count every API request for its key, exactly, without the request paying for it.

Request path
    ``record_request`` adds one to an in-process cell (key, hour, endpoint) under a lock. No
    database, no network.

Shipping (a daemon thread per process, every ``API_KEYS["USAGE_SHIP_INTERVAL"]`` seconds, and at
exit)
    The buffer is taken as a *batch* with a per-process sequence number and moved
    - with ``REDIS_URL``: into the live hash, in one Lua call (HINCRBY per cell, max() for last
      used, EXPIRE so abandoned counters go away). The script remembers the last sequence it
      applied for this process, so a batch whose reply was lost is re-sent without counting twice;
    - without Redis: straight into hourly rows (``write_counts``), exactly once per batch token.
    A batch that fails stays pending and is retried; new counts accumulate beside it in a
    bounded buffer (when Redis is down long enough to fill half of it, the buffer is written to
    the database instead; past the bound, counts are dropped with a warning). Requests never
    notice.

Flush (beat, every minute: ``flush()``)
    Without Redis it ships this process's buffer. With Redis it hands the live hash over
    atomically (one script: RENAME to ``…:flushing:<token>`` and SADD the token to a set), then
    for every handed-over token writes the counts, the last-used times and ``UsageFlush(token)``
    in one transaction and only then deletes the flushing hash. A flush that died before its
    commit leaves the hash and the token: the next flush writes them. One that died after its
    commit leaves a token that ``UsageFlush`` already holds: the next flush only cleans up. Two
    flushes racing on one token cannot both commit (``UsageFlush.token`` is unique).
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Case, DateTimeField, F, Value, When
from django.db.models.functions import Coalesce, Greatest
from django.http import HttpRequest
from django.utils import timezone

from crm_keys.redis_client import get_redis

from .models import APIKey, PrunedUsage, UnknownKeyUsageHour, UsageFlush, UsageHour

logger = logging.getLogger(__name__)

PREFIX = "icrm:usage:"
LIVE = PREFIX + "live"  # the hash every process ships into
FLUSHING = PREFIX + "flushing:"  # + token: a handed-over hash, until its rows are committed
HANDED_OVER = PREFIX + "handed-over"  # set of tokens whose hash is not yet cleaned up
SEQ = PREFIX + "seq:"  # + process id: the last batch sequence the live hash received

UNKNOWN_FIELD = "-"  # key-id part of a Redis field for requests with an unknown key
ENDPOINT_MAX = 200  # UsageHour.endpoint max_length
SQL_BATCH = 500  # rows per INSERT … ON CONFLICT statement
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

# (key id or None for an unknown key, hour as epoch hours, endpoint label)
Cell = tuple[int | None, int, str]


def _conf(name: str, default: Any) -> Any:
    return settings.API_KEYS.get(name, default)


# --- endpoint labels --------------------------------------------------------------------------

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@lru_cache(maxsize=1024)
def endpoint_label(method: str, route: str) -> str:
    """``GET`` + ``api/v1/^contacts/(?P<id>[^/.]+)/$`` -> ``GET /api/v1/contacts/{id}/``."""
    pattern = route.replace("^", "").replace("$", "").replace("\\.", ".")
    pattern = _GROUP.sub(r"{\1}", pattern)
    pattern = _CONVERTER.sub(r"{\1}", pattern)
    return f"{method} /{pattern.lstrip('/')}"[:ENDPOINT_MAX]


def request_endpoint(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    route = match.route if match is not None else "(unmatched)"
    method = request.method or "GET"
    # A client with a valid key must not be able to mint unbounded labels with made-up methods.
    return endpoint_label(method if method in METHODS else "OTHER", route)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_start(hour_index: int) -> datetime:
    return datetime.fromtimestamp(hour_index * 3600, tz=UTC)


def hour_index(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


# --- the in-process buffer -----------------------------------------------------------------


class Buffer:
    """Thread-safe in-process counters: cell -> [requests, errors], and key id -> last used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Cell, list[int]] = {}
        self._last_used: dict[int, float] = {}
        self.dropped = 0

    def add(self, key_id: int | None, endpoint: str, is_error: bool, when: float) -> None:
        cell = (key_id, int(when // 3600), endpoint)
        with self._lock:
            counts = self._counts.get(cell)
            if counts is None:
                if len(self._counts) >= _max_cells():
                    self.dropped += 1
                    return
                self._counts[cell] = [1, 1 if is_error else 0]
            else:
                counts[0] += 1
                if is_error:
                    counts[1] += 1
            if key_id is not None and when > self._last_used.get(key_id, 0.0):
                self._last_used[key_id] = when

    def take(self) -> tuple[dict[Cell, list[int]], dict[int, float], int]:
        with self._lock:
            counts, last_used, dropped = self._counts, self._last_used, self.dropped
            self._counts, self._last_used, self.dropped = {}, {}, 0
        return counts, last_used, dropped

    def merge(self, counts: Mapping[Cell, Sequence[int]], last_used: Mapping[int, float]) -> None:
        """Put counts back (a write that failed); they were in the buffer a moment ago."""
        with self._lock:
            for cell, (requests, errors) in counts.items():
                mine = self._counts.setdefault(cell, [0, 0])
                mine[0] += requests
                mine[1] += errors
            for key_id, when in last_used.items():
                if when > self._last_used.get(key_id, 0.0):
                    self._last_used[key_id] = when

    def __len__(self) -> int:
        return len(self._counts)

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._counts, self._last_used, self.dropped = {}, {}, 0


def _max_cells() -> int:
    return int(_conf("USAGE_BUFFER_MAX_CELLS", 100_000))


buffer = Buffer()


def record_request(request: HttpRequest, status_code: int) -> None:
    """Count one API request. The only work on the request path: a dict update under a lock.
    ``time.time()`` rather than ``timezone.now()``: this runs on every request, and building a
    datetime costs more than the rest of this function (time-machine moves both clocks)."""
    key = getattr(request, "api_key", None)
    buffer.add(
        key.pk if key is not None else None,
        request_endpoint(request),
        status_code >= 400,
        time.time(),
    )
    if _shipper.pid != os.getpid():
        _start_shipper()


# --- shipping -----------------------------------------------------------------------------


@dataclass
class Batch:
    """Counts taken from the buffer, shipped as a unit until delivered."""

    seq: int
    counts: dict[Cell, list[int]]
    last_used: dict[int, float]
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def requests(self) -> int:
        return sum(c[0] for c in self.counts.values())


class _Shipper:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()  # one ship at a time in this process
        self.pending: Batch | None = None
        self.seq = 0
        self.process_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.pid: int | None = None  # the process whose thread is running
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.last_warning: dict[str, float] = {}

    def next_batch(self) -> Batch | None:
        counts, last_used, dropped = buffer.take()
        if dropped:
            _warn("dropped", f"usage buffer full: {dropped} requests were not counted")
        if not counts and not last_used:
            return None
        self.seq += 1
        return Batch(self.seq, counts, last_used)


_shipper = _Shipper()
_start_lock = threading.Lock()
_hooks_installed = False


def _warn(kind: str, message: str) -> None:
    """A warning of each kind at most every 30 s: a dead Redis must not flood the log once per
    second."""
    now = time.monotonic()
    if now - _shipper.last_warning.get(kind, -1e9) >= 30:
        _shipper.last_warning[kind] = now
        logger.warning(message)


def _start_shipper() -> None:
    interval = float(_conf("USAGE_SHIP_INTERVAL", 1.0) or 0)
    if interval <= 0:
        return  # shipping only by flush() (the test settings do this)
    with _start_lock:
        if _shipper.pid == os.getpid():
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=_ship_loop, args=(interval, stop), name="usage-shipper", daemon=True
        )
        _shipper.stop, _shipper.thread, _shipper.pid = stop, thread, os.getpid()
        thread.start()
        _install_exit_hooks()


def _ship_loop(interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            ship()
            close_old_connections()  # honours CONN_MAX_AGE; drops a connection that broke
        except Exception:  # the thread must survive anything
            logger.exception("usage shipper")


def _install_exit_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_ship_at_exit)
    # SIGTERM's default action skips atexit. Only take it over when nobody else has (gunicorn
    # and Celery install their own handlers, which exit through atexit) and we can (main thread).
    if threading.current_thread() is threading.main_thread():
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _exit_on_sigterm)
        except (ValueError, OSError):
            pass


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(128 + signum)


def _ship_at_exit() -> None:
    _shipper.stop.set()
    try:
        ship()
    except Exception:
        logger.exception("usage: shipping at exit failed; those counts are lost")


def _after_fork_in_child() -> None:
    # The child's copy of the buffer belongs to the parent, which ships it.
    buffer.reset()
    _shipper.reset()


os.register_at_fork(after_in_child=_after_fork_in_child)


def reset() -> None:
    """Stop this process's shipper and forget unshipped counts (tests)."""
    _shipper.stop.set()
    if _shipper.thread is not None and _shipper.thread is not threading.current_thread():
        _shipper.thread.join(timeout=5)
    _shipper.reset()
    buffer.reset()


def ship() -> dict[str, Any]:
    """Move this process's counts on: to Redis, or without Redis straight into hourly rows.
    Never raises for an unavailable Redis or database; the counts wait for the next ship."""
    with _shipper.lock:
        client = get_redis()
        shipped = 0
        for _ in range(2):  # the batch a failed ship left behind, then the counts since
            batch = _shipper.pending or _shipper.next_batch()
            if batch is None:
                break
            _shipper.pending = batch
            if not _deliver(batch, client):
                if client is not None and len(buffer) >= _max_cells() // 2:
                    _spill_to_database()
                break
            shipped += batch.requests
            _shipper.pending = None
        waiting = _shipper.pending.requests if _shipper.pending else 0
        return {"shipped": shipped, "pending": waiting}


def _deliver(batch: Batch, client: redis.Redis | None) -> bool:
    if client is not None:
        try:
            _ship_to_redis(client, batch)
            return True
        except redis.RedisError as exc:
            _warn(
                "redis", f"usage: Redis unavailable ({type(exc).__name__}); counts kept in-process"
            )
            return False
    try:
        write_counts(batch.token, batch.counts, batch.last_used)
        return True
    except Exception as exc:
        _warn("database", f"usage: writing hourly rows failed ({type(exc).__name__}); will retry")
        return False


def _spill_to_database() -> None:
    """Redis has been down long enough to fill half the buffer: write the buffer (never sent to
    Redis, so it cannot be counted twice) to the database instead of dropping it."""
    counts, last_used, dropped = buffer.take()
    if dropped:
        _warn("dropped", f"usage buffer full: {dropped} requests were not counted")
    try:
        write_counts(uuid.uuid4().hex, counts, last_used)
    except Exception as exc:
        _warn("database", f"usage: spilling to the database failed ({type(exc).__name__})")
        buffer.merge(counts, last_used)


_SHIP_LUA = """
-- KEYS[1] live hash, KEYS[2] this process's sequence marker
-- ARGV: sequence, hash ttl, marker ttl, number of counter pairs, counter pairs, last-used pairs
local seq = tonumber(ARGV[1])
if seq <= tonumber(redis.call('GET', KEYS[2]) or '0') then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  local seen = redis.call('HGET', KEYS[1], ARGV[i])
  if (not seen) or tonumber(seen) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_HANDOVER_LUA = """
-- KEYS[1] live hash, KEYS[2] flushing hash, KEYS[3] set of handed-over tokens
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""


def _redis_ttl() -> int:
    """How long counters survive in Redis when no flush collects them."""
    return int(_conf("USAGE_REDIS_TTL", 7 * 86400))


def _field(key_id: int | None, hour: int, kind: str, endpoint: str) -> str:
    return f"{UNKNOWN_FIELD if key_id is None else key_id}|{hour}|{kind}|{endpoint}"


def _ship_to_redis(client: redis.Redis, batch: Batch) -> None:
    args: list[Any] = [batch.seq, _redis_ttl(), 86400, 0]
    pairs = 0
    for (key_id, hour, endpoint), (requests, errors) in batch.counts.items():
        args += [_field(key_id, hour, "r", endpoint), requests]
        pairs += 1
        if errors:
            args += [_field(key_id, hour, "e", endpoint), errors]
            pairs += 1
    args[3] = pairs
    for key_id, when in batch.last_used.items():
        args += [f"{key_id}|u", f"{when:.6f}"]
    client.eval(_SHIP_LUA, 2, LIVE, SEQ + _shipper.process_id, *args)


def parse_fields(
    raw: Mapping[bytes | str, bytes | str],
) -> tuple[dict[Cell, list[int]], dict[int, float]]:
    """A live or flushing hash -> (cells, last used)."""
    counts: dict[Cell, list[int]] = {}
    last_used: dict[int, float] = {}
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else name
        parts = text.split("|", 3)
        if len(parts) == 2 and parts[1] == "u":
            last_used[int(parts[0])] = float(value)
            continue
        key_part, hour, kind, endpoint = parts
        key_id = None if key_part == UNKNOWN_FIELD else int(key_part)
        cell = counts.setdefault((key_id, int(hour), endpoint), [0, 0])
        cell[0 if kind == "r" else 1] += int(value)
    return counts, last_used


def pending_for_key(key_id: int) -> tuple[dict[tuple[int, str], list[int]], float | None]:
    """Counts of one key shipped to Redis but not yet flushed: ({(hour, endpoint): [requests,
    errors]}, last used epoch). Empty without Redis or when Redis does not answer."""
    client = get_redis()
    if client is None:
        return {}, None
    try:
        raw = dict(client.hscan_iter(LIVE, match=f"{key_id}|*", count=5000))
    except redis.RedisError:
        return {}, None
    counts, last_used = parse_fields(raw)
    return {(hour, endpoint): c for (_, hour, endpoint), c in counts.items()}, last_used.get(key_id)


# --- the flush ----------------------------------------------------------------------------


def flush() -> dict[str, Any]:
    """Move all counters into hourly rows (the beat job, every minute). Idempotent; safe to
    run twice at once; finishes the work of a flush that died halfway."""
    client = get_redis()
    shipped = ship()
    if client is None:
        return {"mode": "database", "requests": shipped["shipped"], "waiting": shipped["pending"]}
    token = uuid.uuid4().hex
    try:
        client.eval(_HANDOVER_LUA, 3, LIVE, FLUSHING + token, HANDED_OVER, token, _redis_ttl())
        tokens = sorted(t.decode() for t in client.smembers(HANDED_OVER))
    except redis.RedisError as exc:
        logger.warning("usage flush: Redis unavailable (%s); will retry", type(exc).__name__)
        return {"mode": "redis", "error": type(exc).__name__}
    written = already = 0
    for each in tokens:
        requests = _flush_token(client, each)
        if requests is None:
            already += 1
        else:
            written += requests
    return {"mode": "redis", "requests": written, "hand_overs": len(tokens), "already": already}


def _flush_token(client: redis.Redis, token: str) -> int | None:
    counts, last_used = parse_fields(client.hgetall(FLUSHING + token))
    requests = write_counts(token, counts, last_used) if counts or last_used else 0
    _forget(client, token)
    return requests


def _forget(client: redis.Redis, token: str) -> None:
    """Drop a hand-over whose rows are committed."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(FLUSHING + token)
    pipe.srem(HANDED_OVER, token)
    pipe.execute()


def write_counts(
    token: str, counts: Mapping[Cell, Sequence[int]], last_used: Mapping[int, float]
) -> int | None:
    """Add ``counts`` to the hourly rows and move ``last_used_at`` forward, once per token.

    One transaction: ``UsageFlush(token)`` first (a second writer of the same token waits on
    its unique index and then fails), the keys locked in id order (two flushes never deadlock),
    then one ``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` per 500 cells (adds on
    SQLite and PostgreSQL alike; ``bulk_create(update_conflicts=True)`` would overwrite).
    Returns the requests written, or None when this token was already committed."""
    total = sum(c[0] for c in counts.values())
    key_ids = sorted({cell[0] for cell in counts if cell[0] is not None} | set(last_used))
    try:
        with transaction.atomic():
            UsageFlush.objects.create(token=token, requests=total)
            known = _lock_keys(key_ids)
            hours, unknown = [], {}
            for (key_id, hour, endpoint), (requests, errors) in sorted(
                counts.items(), key=lambda item: (item[0][0] or 0, item[0][1], item[0][2])
            ):
                if key_id is None:
                    unknown[hour] = unknown.get(hour, 0) + requests
                elif key_id in known:
                    hours.append(
                        (key_id, hour_start(hour), endpoint[:ENDPOINT_MAX], requests, errors)
                    )
            _increment(UsageHour, ["key", "hour", "endpoint"], ["requests", "errors"], hours)
            _increment(
                UnknownKeyUsageHour,
                ["hour"],
                ["requests"],
                [(hour_start(h), n) for h, n in sorted(unknown.items())],
            )
            _advance_last_used({k: w for k, w in last_used.items() if k in known})
    except IntegrityError:
        if UsageFlush.objects.filter(token=token).exists():
            return None
        raise
    return total


def _lock_keys(key_ids: list[int]) -> set[int]:
    """The ids that still exist, their rows locked in id order."""
    known: set[int] = set()
    for chunk in _chunks(key_ids, 2000):
        known.update(
            APIKey.objects.select_for_update()
            .filter(pk__in=chunk)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return known


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _increment(
    model: type, conflict: list[str], added: list[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert rows, or add their ``added`` columns to the existing row with the same ``conflict``
    columns."""
    if not rows:
        return
    qn = connection.ops.quote_name
    meta = model._meta  # type: ignore[attr-defined]
    fields = [meta.get_field(name) for name in conflict + added]
    table = qn(meta.db_table)
    columns = ", ".join(qn(f.column) for f in fields)
    target = ", ".join(qn(f.column) for f in fields[: len(conflict)])
    updates = ", ".join(
        f"{qn(f.column)} = {table}.{qn(f.column)} + excluded.{qn(f.column)}"
        for f in fields[len(conflict) :]
    )
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, SQL_BATCH):
            params: list[Any] = []
            for row in chunk:
                params += [
                    f.get_db_prep_value(v, connection) for f, v in zip(fields, row, strict=True)
                ]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([row_sql] * len(chunk))} "  # noqa: S608 (identifiers are quoted model names)
                f"ON CONFLICT ({target}) DO UPDATE SET {updates}",
                params,
            )


def _advance_last_used(last_used: Mapping[int, float]) -> None:
    """last_used_at = max(last_used_at, seen): only ever forward, whatever order flushes run in."""
    items = sorted(last_used.items())
    for chunk in _chunks(items, SQL_BATCH):
        seen = Case(
            *[
                When(pk=key_id, then=Value(datetime.fromtimestamp(when, tz=UTC)))
                for key_id, when in chunk
            ],
            output_field=DateTimeField(),
        )
        APIKey.objects.filter(pk__in=[key_id for key_id, _ in chunk]).update(
            last_used_at=Greatest(Coalesce(F("last_used_at"), seen), seen)
        )


# --- retention ----------------------------------------------------------------------------


def prune(now: datetime | None = None, batch_size: int = 5000) -> dict[str, int]:
    """Delete hourly rows older than ``USAGE_RETENTION_DAYS``, in batches of ``batch_size``,
    folding their counts into ``PrunedUsage`` in the same transaction so lifetime totals stay
    exact. Rows are claimed with ``SKIP LOCKED`` (PostgreSQL) so two prunes never fold one row
    twice; SQLite serialises writers anyway."""
    now = now or timezone.now()
    cutoff = hour_of(now) - timedelta(days=int(settings.API_KEYS["USAGE_RETENTION_DAYS"]))
    pruned = 0
    while True:
        with transaction.atomic():
            rows = list(
                UsageHour.objects.select_for_update(skip_locked=True)
                .filter(hour__lt=cutoff)
                .order_by("pk")
                .values_list("pk", "key_id", "endpoint", "requests", "errors")[:batch_size]
            )
            if not rows:
                break
            UsageHour.objects.filter(pk__in=[r[0] for r in rows]).delete()
            folded: dict[tuple[int, str], list[int]] = {}
            for _, key_id, endpoint, requests, errors in rows:
                sums = folded.setdefault((key_id, endpoint), [0, 0])
                sums[0] += requests
                sums[1] += errors
            _increment(
                PrunedUsage,
                ["key", "endpoint"],
                ["requests", "errors"],
                [(k, e, r, er) for (k, e), (r, er) in sorted(folded.items())],
            )
        pruned += len(rows)
    unknown = _delete_in_batches(UnknownKeyUsageHour.objects.filter(hour__lt=cutoff), batch_size)
    # A token only matters while its hand-over could still be in Redis.
    tokens = _delete_in_batches(
        UsageFlush.objects.filter(flushed_at__lt=now - timedelta(seconds=_redis_ttl() + 86400)),
        batch_size,
    )
    return {"usage_rows": pruned, "unknown_key_rows": unknown, "flush_tokens": tokens}


def _delete_in_batches(queryset: Any, batch_size: int) -> int:
    deleted = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += queryset.model.objects.filter(pk__in=ids).delete()[0]


def iter_hourly_rows(key: APIKey) -> Iterable[tuple[datetime, str, int, int]]:
    """(hour, endpoint, requests, errors) of one key, oldest first (the CSV download)."""
    return (
        UsageHour.objects.filter(key=key)
        .order_by("hour", "endpoint")
        .values_list("hour", "endpoint", "requests", "errors")
        .iterator(chunk_size=2000)
    )
