"""Reads shared by the admin, the API and the CLI."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from .models import APIKey, KeyStatus


class KeyNotFound(Exception):
    pass


def key_get(ref: str | int) -> APIKey:
    """A key by database id, public id, or display form (``icrm_<public id>…``)."""
    text = str(ref).strip().rstrip("…").removesuffix("...")
    if text.startswith("icrm_"):
        text = text[5:].split("_", 1)[0]
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
    }


def key_by_full_key(full_key: str) -> APIKey:
    """Find a key from its full value (a leaked key reported by a scanner), by hash."""
    from . import crypto

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


def requests_24h_by_key(key_ids: list[int]) -> dict[int, int]:
    """Requests in the last 24 hours for many keys, in one aggregate query (key list pages)."""
    from django.db.models import Sum

    from .models import UsageHour

    since = timezone.now() - timedelta(hours=24)
    rows = (
        UsageHour.objects.filter(
            key_id__in=key_ids, hour__gte=since.replace(minute=0, second=0, microsecond=0)
        )
        .values("key_id")
        .annotate(total=Sum("requests"))
    )
    return {r["key_id"]: r["total"] for r in rows}


def key_usage(key: APIKey) -> dict[str, Any]:
    """Usage statistics of one key, shared by the admin key page, `apikey show` and the API.

    Keys: total_requests, requests_24h, last_used_at (ISO or None), error_rate (percent or
    None when no requests), top_endpoints [{endpoint, requests, errors}] (top 10),
    hourly [{hour (ISO), requests, errors}] for the last 7 days (168 entries, oldest first).
    """
    from django.db.models import Sum

    from .models import UsageHour

    now = timezone.now()
    rows = UsageHour.objects.filter(key=key)
    totals = rows.aggregate(requests=Sum("requests"), errors=Sum("errors"))
    total, errors = totals["requests"] or 0, totals["errors"] or 0
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    last_24h = (
        rows.filter(hour__gte=this_hour - timedelta(hours=23)).aggregate(n=Sum("requests"))["n"]
        or 0
    )
    top = list(
        rows.values("endpoint")
        .annotate(requests=Sum("requests"), errors=Sum("errors"))
        .order_by("-requests", "endpoint")[:10]
    )
    start = this_hour - timedelta(hours=167)
    by_hour = {
        r["hour"]: r
        for r in rows.filter(hour__gte=start)
        .values("hour")
        .annotate(requests=Sum("requests"), errors=Sum("errors"))
    }
    hourly = []
    for i in range(168):
        hour = start + timedelta(hours=i)
        r = by_hour.get(hour, {"requests": 0, "errors": 0})
        hourly.append({"hour": hour.isoformat(), "requests": r["requests"], "errors": r["errors"]})
    return {
        "total_requests": total,
        "requests_24h": last_24h,
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "error_rate": round(100 * errors / total, 2) if total else None,
        "top_endpoints": top,
        "hourly": hourly,
    }
