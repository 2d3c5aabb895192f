"""Counts into hourly rows: the one writer of ``UsageHour``, ``UnknownKeyUsageHour``,
``APIKey.last_used_at``, and of a key's clients and recent errors (``KeyClient``,
``RecentError``), used by the shipper (without Redis) and the flush (with Redis).

A cell is (key id or None for an unknown key, hour as epoch hours, endpoint label).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, DateTimeField, F, Subquery, Value, When, Window
from django.db.models.functions import Coalesce, Greatest, RowNumber

from ..models import APIKey, KeyClient, RecentError, UnknownKeyUsageHour, UsageFlush, UsageHour
from .callers import Callers, clients_per_key, errors_per_key

Cell = tuple[int | None, int, str]
ENDPOINT_MAX = 200  # UsageHour.endpoint max_length
SQL_BATCH = 500  # rows per INSERT … ON CONFLICT statement


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hour_start(hour_index: int) -> datetime:
    return datetime.fromtimestamp(hour_index * 3600, tz=UTC)


def hour_index(moment: datetime) -> int:
    return int(moment.timestamp() // 3600)


def write_counts(
    token: str,
    counts: Mapping[Cell, Sequence[int]],
    last_used: Mapping[int, float],
    callers: Callers | None = None,
) -> int | None:
    """Add ``counts`` to the hourly rows, move ``last_used_at`` forward and add the batch's
    clients and errors (``callers``), once per token.

    One transaction: ``UsageFlush(token)`` first (a second writer of the same token waits on
    its unique index and then fails), the keys locked in id order (two flushes never deadlock),
    then one ``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`` per 500 cells (adds on
    SQLite and PostgreSQL alike; ``bulk_create(update_conflicts=True)`` would overwrite).
    Returns the requests written, or None when this token was already committed."""
    total = sum(c[0] for c in counts.values())
    callers = callers or Callers()
    key_ids = sorted(
        {cell[0] for cell in counts if cell[0] is not None} | set(last_used) | callers.key_ids()
    )
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
            increment(UsageHour, ["key", "hour", "endpoint"], ["requests", "errors"], hours)
            increment(
                UnknownKeyUsageHour,
                ["hour"],
                ["requests"],
                [(hour_start(h), n) for h, n in sorted(unknown.items())],
            )
            _advance_last_used({k: w for k, w in last_used.items() if k in known})
            write_callers(callers, known)
    except IntegrityError:
        if UsageFlush.objects.filter(token=token).exists():
            return None
        raise
    return total


def _lock_keys(key_ids: list[int]) -> set[int]:
    """The ids that still exist, their rows locked in id order."""
    known: set[int] = set()
    for chunk in chunks(key_ids, 2000):
        known.update(
            APIKey.objects.select_for_update()
            .filter(pk__in=chunk)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return known


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def increment(
    model: type,
    conflict: list[str],
    added: list[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    earliest: Sequence[str] = (),
    latest: Sequence[str] = (),
) -> None:
    """Insert rows, or add their ``added`` columns to the existing row with the same ``conflict``
    columns (and keep the smaller of the ``earliest`` columns, the larger of the ``latest``;
    rows give their values in the order conflict, added, earliest, latest)."""
    if not rows:
        return
    qn = connection.ops.quote_name
    meta = model._meta  # type: ignore[attr-defined]
    fields = [meta.get_field(name) for name in [*conflict, *added, *earliest, *latest]]
    table = qn(meta.db_table)
    columns = ", ".join(qn(f.column) for f in fields)
    target = ", ".join(qn(f.column) for f in fields[: len(conflict)])
    # SQLite's two-argument min()/max() are PostgreSQL's LEAST()/GREATEST().
    least, greatest = ("MIN", "MAX") if connection.vendor == "sqlite" else ("LEAST", "GREATEST")
    updates = ", ".join(
        [
            f"{qn(f.column)} = {table}.{qn(f.column)} + excluded.{qn(f.column)}"
            for f in fields[len(conflict) : len(conflict) + len(added)]
        ]
        + [
            f"{qn(f.column)} = {fn}({table}.{qn(f.column)}, excluded.{qn(f.column)})"
            for f, fn in zip(
                fields[len(conflict) + len(added) :],
                [least] * len(earliest) + [greatest] * len(latest),
                strict=True,
            )
        ]
    )
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with connection.cursor() as cursor:
        for chunk in chunks(rows, SQL_BATCH):
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
    for chunk in chunks(items, SQL_BATCH):
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


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def write_callers(callers: Callers, known: set[int]) -> None:
    """Add the clients (requests added, first seen kept earliest, last seen latest) and errors
    of keys that still exist, then keep each touched key's ``CLIENTS_PER_KEY`` most recently
    seen clients and ``RECENT_ERRORS_PER_KEY`` latest errors: at most four statements
    whatever the traffic."""
    clients = sorted(
        (key_id, ip, agent, int(requests), _moment(first), _moment(last))
        for (key_id, ip, agent), (requests, first, last) in callers.clients.items()
        if key_id in known
    )
    increment(
        KeyClient,
        ["key", "ip", "user_agent"],
        ["requests"],
        clients,
        earliest=["first_seen"],
        latest=["last_seen"],
    )
    errors = [
        RecentError(
            key_id=key_id,
            at=_moment(at),
            method=method,
            endpoint=endpoint,
            status=status,
            detail=detail,
            ip=ip,
            user_agent=agent,
        )
        for key_id, events in sorted(callers.errors.items())
        if key_id in known
        for at, method, endpoint, status, detail, ip, agent in events[-errors_per_key() :]
    ]
    RecentError.objects.bulk_create(errors, batch_size=SQL_BATCH)
    if clients:
        _keep_latest(KeyClient, {c[0] for c in clients}, "last_seen", clients_per_key())
    if errors:
        _keep_latest(RecentError, {e.key_id for e in errors}, "at", errors_per_key())


def _keep_latest(model: Any, key_ids: set[int], order: str, keep: int) -> None:
    """Delete all but the ``keep`` latest rows (by ``order``) of each of ``key_ids``: one
    statement (a window function ranks each key's rows)."""
    ranked = (
        model.objects.filter(key_id__in=sorted(key_ids))
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("key_id")], order_by=[F(order).desc(), F("pk").desc()]
            )
        )
        .filter(rank__gt=keep)
        .values("pk")
    )
    model.objects.filter(pk__in=Subquery(ranked)).delete()
