"""Usage statistics shared by the admin, the API and the CLI: one key's figures, the key list's
24-hour counts, the unknown-key counter, and a key's hourly rows for the CSV download."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q, Sum
from django.utils import timezone

from ..models import APIKey, PrunedUsage, UnknownKeyUsageHour, UsageHour
from . import transport
from .chart import usage_chart
from .rows import hour_start

# Freshness: the hourly rows are as fresh as the last flush (every minute with Redis; without
# Redis every process writes its own counts every USAGE_SHIP_INTERVAL seconds). key_usage also
# adds what has reached Redis but not yet been flushed (one HSCAN of a hash that holds about a
# minute of traffic); the list and the API read the rows only. See the README.


def usage_windows(now: datetime | None = None) -> tuple[datetime, datetime, datetime]:
    """(current hour, first hour of the last 24, first hour of the last 168). "Last 24 hours"
    is the 24 hourly buckets ending with the current one (rows are hourly)."""
    this_hour = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    return this_hour, this_hour - timedelta(hours=23), this_hour - timedelta(hours=167)


def requests_24h_by_key(key_ids: list[int]) -> dict[int, int]:
    """Requests in the last 24 hours for many keys, in one aggregate query (key list pages)."""
    _, day_start, _ = usage_windows()
    rows = (
        UsageHour.objects.filter(key_id__in=key_ids, hour__gte=day_start)
        .values("key_id")
        .annotate(total=Sum("requests"))
        .order_by()
    )
    return {r["key_id"]: r["total"] for r in rows}


class KeyUsage(dict):
    """key_usage's figures: a plain dict for JSON (CLI, API), plus ``chart_svg`` for templates
    (``{{ usage.chart_svg }}``: Django templates fall back to attributes)."""

    @property
    def chart_svg(self) -> str:
        return usage_chart(self["hourly"])

    @property
    def chart_svg_compact(self) -> str:
        """The same chart drawn for a phone's width (readable labels)."""
        return usage_chart(self["hourly"], chart_id="usage-chart-compact", layout="compact")

    @property
    def last_used(self) -> datetime | None:
        value = self.get("last_used_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def measured_at(self) -> datetime:
        return datetime.fromisoformat(self["as_of"])


def key_usage(
    key: APIKey, *, include_unflushed: bool = True, pending: transport.Shipment | None = None
) -> KeyUsage:
    """Usage statistics of one key, shared by the admin key page, `apikey show` and the API.

    Keys: total_requests, total_errors, requests_24h, errors_24h, last_used_at (ISO or None),
    error_rate and error_rate_24h (percent, or None without requests), top_endpoints
    [{endpoint, requests, errors}] (top 10, lifetime), hourly [{hour (ISO), requests, errors}]
    for the last 7 days (168 entries, oldest first), includes_unflushed, as_of.
    Three queries (per endpoint, pruned totals, per hour), plus one Redis HSCAN when Redis is
    configured and include_unflushed (none when the caller passes what it read: ``pending``).
    """
    now = timezone.now()
    _, day_start, week_start = usage_windows(now)
    rows = UsageHour.objects.filter(key=key)
    endpoints: dict[str, list[int]] = {}  # endpoint -> [requests, errors, requests 24h, errors 24h]
    for r in (
        rows.values("endpoint")
        .annotate(
            n=Sum("requests"),
            e=Sum("errors"),
            n_24h=Sum("requests", filter=Q(hour__gte=day_start)),
            e_24h=Sum("errors", filter=Q(hour__gte=day_start)),
        )
        .order_by()
    ):
        endpoints[r["endpoint"]] = [r["n"], r["e"], r["n_24h"] or 0, r["e_24h"] or 0]
    for r in PrunedUsage.objects.filter(key=key).values("endpoint", "requests", "errors"):
        sums = endpoints.setdefault(r["endpoint"], [0, 0, 0, 0])
        sums[0] += r["requests"]
        sums[1] += r["errors"]
    by_hour = {
        r["hour"]: [r["n"], r["e"]]
        for r in rows.filter(hour__gte=week_start)
        .values("hour")
        .annotate(n=Sum("requests"), e=Sum("errors"))
        .order_by()
    }
    last_used = key.last_used_at
    unflushed = include_unflushed and bool(getattr(settings, "REDIS_URL", ""))
    if unflushed:
        if pending is None:
            pending = transport.pending_of_key(key.pk)
        seen = pending.last_used.get(key.pk)
        for (_, hour_index, endpoint), (requests, errors) in pending.counts.items():
            hour = hour_start(hour_index)
            recent = hour >= day_start
            sums = endpoints.setdefault(endpoint, [0, 0, 0, 0])
            sums[0] += requests
            sums[1] += errors
            sums[2] += requests if recent else 0
            sums[3] += errors if recent else 0
            if hour >= week_start:
                cell = by_hour.setdefault(hour, [0, 0])
                cell[0] += requests
                cell[1] += errors
        if seen is not None:
            seen_at = datetime.fromtimestamp(seen, tz=UTC)
            last_used = seen_at if last_used is None else max(last_used, seen_at)

    total = sum(v[0] for v in endpoints.values())
    errors = sum(v[1] for v in endpoints.values())
    total_24h = sum(v[2] for v in endpoints.values())
    errors_24h = sum(v[3] for v in endpoints.values())
    top = sorted(endpoints.items(), key=lambda item: (-item[1][0], item[0]))[:10]
    hourly = []
    for i in range(168):
        hour = week_start + timedelta(hours=i)
        requests, errs = by_hour.get(hour, (0, 0))
        hourly.append({"hour": hour.isoformat(), "requests": requests, "errors": errs})
    return KeyUsage(
        total_requests=total,
        total_errors=errors,
        requests_24h=total_24h,
        errors_24h=errors_24h,
        last_used_at=last_used.isoformat() if last_used else None,
        error_rate=_percent(errors, total),
        error_rate_24h=_percent(errors_24h, total_24h),
        top_endpoints=[
            {"endpoint": endpoint, "requests": v[0], "errors": v[1]} for endpoint, v in top
        ],
        hourly=hourly,
        includes_unflushed=unflushed,
        as_of=now.isoformat(),
    )


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def key_request_counts(key: APIKey) -> dict[str, int]:
    """Lifetime and last-24h requests of one key, as of the last flush (GET /api/v1/key/):
    two small aggregate queries, no Redis."""
    _, day_start, _ = usage_windows()
    counts = UsageHour.objects.filter(key=key).aggregate(
        total=Sum("requests"), last_24h=Sum("requests", filter=Q(hour__gte=day_start))
    )
    pruned = PrunedUsage.objects.filter(key=key).aggregate(total=Sum("requests"))["total"] or 0
    return {
        "total_requests": (counts["total"] or 0) + pruned,
        "requests_24h": counts["last_24h"] or 0,
    }


def unknown_key_requests() -> dict[str, int]:
    """Requests that presented a credential matching no key: total retained and last 24h."""
    _, day_start, _ = usage_windows()
    counts = UnknownKeyUsageHour.objects.aggregate(
        total=Sum("requests"), last_24h=Sum("requests", filter=Q(hour__gte=day_start))
    )
    return {"total_requests": counts["total"] or 0, "requests_24h": counts["last_24h"] or 0}


def iter_hourly_rows(key: APIKey) -> Iterable[tuple[datetime, str, int, int]]:
    """(hour, endpoint, requests, errors) of one key, oldest first (the CSV download)."""
    return (
        UsageHour.objects.filter(key=key)
        .order_by("hour", "endpoint")
        .values_list("hour", "endpoint", "requests", "errors")
        .iterator(chunk_size=2000)
    )
