"""Reads shared by the admin, the API, the CLI and the jobs (usage figures: ``usage.stats``)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet
from django.utils import timezone

from . import crypto
from .alerts.rules import thresholds_for
from .models import APIKey, KeyPolicy, KeyStatus
from .usage import insights
from .usage.stats import key_request_counts, key_usage


class KeyNotFound(Exception):
    pass


_DATABASE_ID = re.compile(r"[0-9]{1,11}")  # ASCII digits only: "²".isdigit() is True


def key_get(ref: str | int) -> APIKey:
    """A key by database id, public id, or display form (``icrm_<public id>…``). Anything
    else (other digits, NUL, absurd lengths) is KeyNotFound without a query."""
    text = crypto.public_id_from_ref(str(ref))
    query = APIKey.objects.select_related("replaced_by", "created_by", "owner")
    try:
        if _DATABASE_ID.fullmatch(text):
            return query.get(pk=int(text))
        if crypto.is_public_id(text):
            return query.get(public_id=text)
    except APIKey.DoesNotExist:
        pass
    raise KeyNotFound(f"No API key {str(ref)[:40]!r} (give its id or public id).")


# A search longer than the longest name or description can match nothing (and on SQLite a LIKE
# pattern over 50,000 bytes is refused by the database): callers refuse one beyond this.
KEY_SEARCH_MAX_LENGTH = max(APIKey._meta.get_field(f).max_length for f in ("name", "description"))


def key_list(*, status: str | None = None, search: str | None = None) -> QuerySet[APIKey]:
    keys = APIKey.objects.select_related("replaced_by", "owner").order_by("-created_at", "-id")
    if status:
        keys = keys.with_status(status)
    if search:
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
        "owner": key.owner.get_username() if key.owner_id else None,
        "granted_by": key.granted_by_label,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        "expires": key.expiry_text(),  # as the admin chose it: "2027-01-15, end of day UTC"
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


def key_by_full_key(pasted: str) -> APIKey:
    """Find a key from its full value (a leaked key reported by a scanner), by hash. The value
    may come as found: ``Bearer icrm_…``, ``X-API-Key: icrm_…`` or a log line holding it; the
    one key-shaped token in it is the key. The messages never repeat what was pasted."""
    tokens = crypto.key_tokens(pasted)
    if not tokens:
        raise KeyNotFound(
            "That is not a well-formed crm-keys API key: nothing in it has the shape "
            f"{crypto.PREFIX}_<12 characters>_<38 characters>."
        )
    if len(tokens) > 1:
        raise KeyNotFound(
            f"What was pasted holds {len(tokens)} different keys; paste one key at a time."
        )
    full_key = tokens[0]
    try:
        public_id = crypto.parse_key(full_key)
    except crypto.KeyFormatError as exc:
        if exc.reason == "checksum":
            raise KeyNotFound(
                "That key is mistyped: its checksum does not match (a character was changed "
                "when it was copied). No key can have this value."
            ) from None
        raise KeyNotFound("That is not a well-formed crm-keys API key.") from None
    key = APIKey.objects.filter(public_id=public_id).first()
    if key is None or not crypto.key_matches(full_key, key.key_hash):
        raise KeyNotFound("No API key matches that value.")
    return key


def key_protections_and_alerts(key: APIKey) -> dict[str, Any]:
    """Every setting of the key page beyond name, description and scopes; alert thresholds as
    they apply (the key's own value, or the API_KEYS default)."""
    limits = thresholds_for(key)
    return {
        "rate_limit_per_minute": key.rate_limit_per_minute,
        "allowed_ips": key.allowed_ips.split(),
        "alerts": {
            "muted": key.alerts_muted,
            "volume_per_hour": {
                "value": limits.volume_per_hour,
                "default": key.alert_volume_per_hour is None,
            },
            "error_rate_percent": {
                "value": limits.error_rate_percent,
                "default": key.alert_error_rate_percent is None,
            },
            "unused_days": {"value": limits.unused_days, "default": key.alert_unused_days is None},
        },
    }


def key_detail(key: APIKey) -> dict[str, Any]:
    """key_summary plus every setting, the usage figures, the key's clients, its granted
    permissions unused in the window and its recent errors (`apikey show`). What Redis holds
    and the tables do not yet is read once and counted in all of them."""
    data = key_summary(key)
    data.update(key_protections_and_alerts(key))
    shipment = insights.pending(key)
    review = insights.scope_review(key, shipment=shipment)
    data["usage"] = key_usage(key, pending=shipment)
    data["clients"] = insights.key_clients(key, shipment)
    # A key (with the keys it replaced) younger than the window has no unused permissions yet,
    # as on the key page: "unused" would mean nothing so far.
    data["unused_scopes"] = review.unused if review.old_enough else []
    data["unused_scopes_window_days"] = review.days
    data["unused_scopes_too_new"] = not review.old_enough
    data["recent_errors"] = insights.key_recent_errors(key, shipment)
    return data


def policy_breaches(policy: KeyPolicy | None = None) -> list[tuple[APIKey, list[str]]]:
    """Active keys that break the key policy (made stricter after they were generated), with
    how; oldest first. Listed for an admin to act on: the policy never changes them. The old
    key of a rotation is left out: it cannot be edited or rotated, and it is revoked when its
    grace period ends."""
    policy = policy or KeyPolicy.current()
    keys = (
        APIKey.objects.active()
        .filter(replaced_by__isnull=True)
        .select_related("owner")
        .order_by("created_at", "pk")
    )
    return [(key, found) for key in keys.iterator(2000) if (found := policy.breaches(key))]


# --- what the jobs work on ------------------------------------------------------------------


def grace_ended(now: datetime) -> QuerySet[APIKey]:
    """Rotated keys whose grace period has ended and whose revocation is not yet recorded."""
    return APIKey.objects.filter(grace_ends_at__lte=now, revoked_at__isnull=True)


def expired_unrecorded(now: datetime) -> QuerySet[APIKey]:
    """Keys that reached their expiry while still usable (not revoked, grace not over, at the
    moment of expiry) and whose expiry has no audit entry yet. A key revoked before it would
    have expired never expired, so it gets no "expired" entry."""
    return APIKey.objects.filter(expires_at__lte=now, expiry_recorded_at__isnull=True).filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=F("expires_at")),
        Q(grace_ends_at__isnull=True) | Q(grace_ends_at__gt=F("expires_at")),
    )


def expiring_soon(now: datetime, within: timedelta) -> QuerySet[APIKey]:
    """Active keys that expire within ``within`` and have had no expiry reminder. A key already
    replaced by rotation is left out: its replacement exists and it stops at its grace end."""
    return APIKey.objects.active(now).filter(
        expires_at__gt=now,
        expires_at__lte=now + within,
        expiry_reminder_sent_at__isnull=True,
        replaced_by__isnull=True,
    )
