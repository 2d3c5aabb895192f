"""Reads shared by the admin, the API and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from . import crypto
from .models import (
    Alert,
    APIKey,
    KeyStatus,
    PrunedUsage,
    UnknownKeyUsageHour,
    UsageHour,
)


class KeyNotFound(Exception):
    pass


def key_get(ref: str | int) -> APIKey:
    """A key by database id, public id, or display form (``icrm_<public id>…``)."""
    text = crypto.public_id_from_ref(str(ref))
    query = APIKey.objects.select_related("replaced_by", "created_by")
    try:
        if text.isdigit() and len(text) < 12:
            return query.get(pk=int(text))
        return query.get(public_id=text)
    except APIKey.DoesNotExist:
        raise KeyNotFound(f"No API key {str(ref)[:40]!r} (give its id or public id).") from None


def key_list(*, status: str | None = None, search: str | None = None) -> QuerySet[APIKey]:
    keys = APIKey.objects.select_related("replaced_by").order_by("-created_at", "-id")
    if status:
        keys = keys.with_status(status)
    if search:
        from django.db.models import Q

        keys = keys.filter(Q(name__icontains=search) | Q(description__icontains=search))
    return keys


def key_summary(key: APIKey) -> dict[str, Any]:
    """What the CLI and the API say about a key (never its secret)."""
    now = timezone.now()
    status = key.status_at(now)
    return {
        "id": key.pk,
        "name": key.name,
        "description": key.description,
        "public_id": key.public_id,
        "key": key.display_id,
        "status": str(status),
        "scopes": key.scopes,
        "created_at": key.created_at.isoformat(),
        "created_by": key.created_by_label,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "in_grace_period": key.in_grace_at(now),
        "grace_ends_at": key.grace_ends_at.isoformat() if key.grace_ends_at else None,
        "replaced_by": key.replaced_by.public_id if key.replaced_by_id else None,
    }


def key_self_description(key: APIKey) -> dict[str, Any]:
    """GET /api/v1/key/: what an integration may learn about its own key."""
    now = timezone.now()
    in_grace = key.in_grace_at(now)
    return {
        "name": key.name,
        "public_id": key.public_id,
        "scopes": key.scopes,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "status": str(
            KeyStatus.ACTIVE if key.status_at(now) == KeyStatus.ACTIVE else key.status_at(now)
        ),
        "in_grace_period": in_grace,
        "grace_ends_at": key.grace_ends_at.isoformat() if in_grace else None,
        "replaced_by": key.replaced_by.public_id if in_grace and key.replaced_by_id else None,
        # total_requests, requests_24h: as of the last flush (about a minute behind at most).
        **key_request_counts(key),
    }


def key_by_full_key(full_key: str) -> APIKey:
    """Find a key from its full value (a leaked key reported by a scanner), by hash."""
    try:
        public_id = crypto.parse_key(full_key)
    except crypto.KeyFormatError:
        raise KeyNotFound("That is not a well-formed crm-keys API key.") from None
    key = APIKey.objects.filter(public_id=public_id).first()
    if key is None or not crypto.key_matches(full_key, key.key_hash):
        raise KeyNotFound("No API key matches that value.")
    return key


def key_detail(key: APIKey) -> dict[str, Any]:
    """key_summary plus usage figures (filled in by the usage selectors)."""
    data = key_summary(key)
    data["usage"] = key_usage(key)
    return data


# --- usage and alerts ------------------------------------------------------------------------
#
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
        from .charts import usage_chart

        return usage_chart(self["hourly"])

    @property
    def last_used(self) -> datetime | None:
        value = self.get("last_used_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def measured_at(self) -> datetime:
        return datetime.fromisoformat(self["as_of"])


def key_usage(key: APIKey, *, include_unflushed: bool = True) -> KeyUsage:
    """Usage statistics of one key, shared by the admin key page, `apikey show` and the API.

    Keys: total_requests, total_errors, requests_24h, errors_24h, last_used_at (ISO or None),
    error_rate and error_rate_24h (percent, or None without requests), top_endpoints
    [{endpoint, requests, errors}] (top 10, lifetime), hourly [{hour (ISO), requests, errors}]
    for the last 7 days (168 entries, oldest first), includes_unflushed, as_of.
    Three queries (per endpoint, pruned totals, per hour), plus one Redis HSCAN when Redis is
    configured and include_unflushed.
    """
    from . import usage

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
        pending, seen = usage.pending_for_key(key.pk)
        for (hour_index, endpoint), (requests, errors) in pending.items():
            hour = usage.hour_start(hour_index)
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


def open_alerts_by_key(key_ids: list[int]) -> dict[int, list[str]]:
    """Kinds of the open alerts of many keys, in one query (badges on the key list)."""
    found: dict[int, list[str]] = {}
    for key_id, kind in (
        Alert.objects.filter(key_id__in=key_ids, resolved_at__isnull=True)
        .order_by("key_id", "kind")
        .values_list("key_id", "kind")
    ):
        found.setdefault(key_id, []).append(kind)
    return found


def key_alerts(key: APIKey, limit: int = 20) -> list[Alert]:
    """A key's alerts, open ones first, then the latest resolved (the key page)."""
    return list(
        Alert.objects.filter(key=key).order_by(
            F("resolved_at").desc(nulls_first=True), "-opened_at"
        )[:limit]
    )
