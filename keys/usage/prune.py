"""Retention: hourly usage rows older than ``USAGE_RETENTION_DAYS`` are folded into lifetime
totals (``PrunedUsage``) and deleted (beat, daily); so are clients last seen and errors sent
before then."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..conf import key_settings
from ..models import (
    KeyClient,
    PrunedUsage,
    RecentError,
    UnknownKeyUsageHour,
    UsageFlush,
    UsageHour,
)
from .rows import hour_of, increment
from .transport import redis_ttl


def prune(now: datetime | None = None, batch_size: int = 5000) -> dict[str, int]:
    """Delete hourly rows older than ``USAGE_RETENTION_DAYS``, in batches of ``batch_size``,
    folding their counts into ``PrunedUsage`` in the same transaction so lifetime totals stay
    exact. Rows are claimed with ``SKIP LOCKED`` (PostgreSQL) so two prunes never fold one row
    twice; SQLite serialises writers anyway."""
    now = now or timezone.now()
    cutoff = hour_of(now) - timedelta(days=int(key_settings.USAGE_RETENTION_DAYS))
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
            increment(
                PrunedUsage,
                ["key", "endpoint"],
                ["requests", "errors"],
                [(k, e, r, er) for (k, e), (r, er) in sorted(folded.items())],
            )
        pruned += len(rows)
    unknown = _delete_in_batches(UnknownKeyUsageHour.objects.filter(hour__lt=cutoff), batch_size)
    clients = _delete_in_batches(KeyClient.objects.filter(last_seen__lt=cutoff), batch_size)
    errors = _delete_in_batches(RecentError.objects.filter(at__lt=cutoff), batch_size)
    # A token only matters while its hand-over could still be in Redis.
    tokens = _delete_in_batches(
        UsageFlush.objects.filter(flushed_at__lt=now - timedelta(seconds=redis_ttl() + 86400)),
        batch_size,
    )
    return {
        "usage_rows": pruned,
        "unknown_key_rows": unknown,
        "clients": clients,
        "errors": errors,
        "flush_tokens": tokens,
    }


def _delete_in_batches(queryset: Any, batch_size: int) -> int:
    deleted = 0
    while True:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return deleted
        deleted += queryset.model.objects.filter(pk__in=ids).delete()[0]
