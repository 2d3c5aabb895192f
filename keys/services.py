"""Every change of an API key.

Each function is keyword-only, takes the ``actor`` who acts, runs in one transaction, locks the
row it changes and writes its audit entry in that same transaction. The admin, the API, the
CLI and the Celery tasks call these; nothing else saves a key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction
from audit.services import audit_record

from . import crypto
from .keycache import key_changed
from .models import APIKey, ExpiryPolicy, KeyStatus
from .scopes import ScopeError, Scopes, describe, normalize

MAX_CUSTOM_EXPIRY_DAYS = 3650
POLICY_DAYS = {ExpiryPolicy.DAYS_30: 30, ExpiryPolicy.DAYS_90: 90, ExpiryPolicy.YEAR_1: 365}


class KeyServiceError(Exception):
    """A refused change, with a message fit to show an admin or CLI user."""


class KeyValidationError(KeyServiceError):
    pass


class KeyStateError(KeyServiceError):
    pass


@dataclass(frozen=True)
class Generated:
    key: APIKey
    full_key: str  # shown once, never stored

    def __repr__(self) -> str:
        return f"Generated(key={self.key!r})"


def compute_expiry(
    policy: str, custom_date: date | None, *, now: datetime | None = None
) -> datetime | None:
    """Expiry time for a policy. A custom date means the key works through that whole day
    (server time zone). Raises KeyValidationError for a date not in the future or absurdly far."""
    now = now or timezone.now()
    policy = ExpiryPolicy(policy)
    if policy == ExpiryPolicy.NEVER:
        return None
    if policy == ExpiryPolicy.CUSTOM:
        if custom_date is None:
            raise KeyValidationError("Choose the custom expiry date.")
        today = timezone.localdate(now)
        if custom_date <= today:
            raise KeyValidationError("The custom expiry date must be in the future.")
        if custom_date > today + timedelta(days=MAX_CUSTOM_EXPIRY_DAYS):
            raise KeyValidationError("The custom expiry date must be within 10 years.")
        return timezone.make_aware(datetime.combine(custom_date + timedelta(days=1), time.min))
    return now + timedelta(days=POLICY_DAYS[policy])


def _clean_scopes(scopes: Mapping[str, Any]) -> Scopes:
    try:
        cleaned = normalize(scopes)
    except ScopeError as exc:
        raise KeyValidationError(str(exc)) from exc
    if not cleaned:
        raise KeyValidationError("Give the key at least one permission (module and action).")
    return cleaned


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise KeyValidationError("The key needs a name.")
    if len(name) > 100:
        raise KeyValidationError("The name must be at most 100 characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise KeyValidationError("The name must not contain control characters.")
    return name


def _clean_description(description: str) -> str:
    description = (description or "").strip()
    if len(description) > 1000:
        raise KeyValidationError("The description must be at most 1000 characters.")
    if "\x00" in description:
        raise KeyValidationError("The description must not contain NUL characters.")
    return description


def snapshot(key: APIKey) -> dict[str, Any]:
    """What an audit entry records of a key (never its secret: there is none to record)."""
    return {
        "name": key.name,
        "description": key.description,
        "scopes": key.scopes,
        "expiry_policy": key.expiry_policy,
        "expires_at": key.expires_at,
    }


def _insert_new_key(**fields: Any) -> tuple[APIKey, str]:
    """Insert a key with a fresh public id, retrying on the (astronomically rare) collision."""
    for _ in range(5):
        new = crypto.make_key()
        try:
            with transaction.atomic():
                key = APIKey.objects.create(
                    public_id=new.public_id, key_hash=crypto.hash_key(new.full), **fields
                )
            return key, new.full
        except IntegrityError:
            continue
    raise RuntimeError("Could not allocate a unique public id")


@transaction.atomic
def key_generate(
    *,
    name: str,
    scopes: Mapping[str, Any],
    actor: Actor,
    description: str = "",
    expiry_policy: str = ExpiryPolicy.DAYS_90,
    expiry_date: date | None = None,
) -> Generated:
    """Create a key. Only its HMAC is stored; the full key is returned once, to be shown once."""
    fields = {
        "name": _clean_name(name),
        "description": _clean_description(description),
        "scopes": _clean_scopes(scopes),
        "expiry_policy": ExpiryPolicy(expiry_policy),
        "expires_at": compute_expiry(expiry_policy, expiry_date),
        "created_by": actor.user,
        "created_by_label": actor.label[:150],
    }
    key, full = _insert_new_key(**fields)
    audit_record(
        action=AuditAction.GENERATED,
        actor=actor,
        key=key,
        after=snapshot(key),
        message=f"Permissions: {describe(key.scopes)}",
    )
    return Generated(key=key, full_key=full)


def _lock(key: APIKey | int) -> APIKey:
    pk = key.pk if isinstance(key, APIKey) else key
    return APIKey.objects.select_for_update().get(pk=pk)


def _refuse_if_revoked(key: APIKey, doing: str) -> None:
    if key.status == KeyStatus.REVOKED:
        raise KeyStateError(f"This key is revoked; it cannot be {doing}.")


_UNSET: Any = object()


@transaction.atomic
def key_update(
    *,
    key: APIKey | int,
    actor: Actor,
    name: str = _UNSET,
    description: str = _UNSET,
    scopes: Mapping[str, Any] = _UNSET,
    alert_volume_per_hour: int | None = _UNSET,
    alert_error_rate_percent: float | None = _UNSET,
    alert_unused_days: int | None = _UNSET,
    alerts_muted: bool = _UNSET,
    rate_limit_per_minute: int | None = _UNSET,
    allowed_ips: str = _UNSET,
    allowed_origins: str = _UNSET,
) -> APIKey:
    """Edit a key's details, permissions and settings. Takes effect on the very next request.
    A scope change gets its own "scopes changed" audit entry with before/after; other changes
    one "edited" entry. A revoked key cannot be edited (it can never be used again)."""
    obj = _lock(key)
    _refuse_if_revoked(obj, "edited")
    changes: dict[str, Any] = {}
    if name is not _UNSET:
        changes["name"] = _clean_name(name)
    if description is not _UNSET:
        changes["description"] = _clean_description(description)
    if scopes is not _UNSET:
        changes["scopes"] = _clean_scopes(scopes)
    for field, value in (
        ("alert_volume_per_hour", alert_volume_per_hour),
        ("alert_error_rate_percent", alert_error_rate_percent),
        ("alert_unused_days", alert_unused_days),
        ("alerts_muted", alerts_muted),
        ("rate_limit_per_minute", rate_limit_per_minute),
        ("allowed_ips", allowed_ips),
        ("allowed_origins", allowed_origins),
    ):
        if value is not _UNSET:
            changes[field] = value
    rate = changes.get("alert_error_rate_percent")
    if rate is not None and not 0 <= rate <= 100:
        raise KeyValidationError("The error-rate threshold is a percentage between 0 and 100.")
    if "allowed_ips" in changes:
        from .netrules import normalize_networks

        try:
            changes["allowed_ips"] = normalize_networks(changes["allowed_ips"])
        except ValueError as exc:
            raise KeyValidationError(str(exc)) from exc

    changed = {f: v for f, v in changes.items() if getattr(obj, f) != v}
    if not changed:
        return obj
    before = {f: getattr(obj, f) for f in changed}
    for f, v in changed.items():
        setattr(obj, f, v)
    obj.save(update_fields=list(changed))
    key_changed(obj.public_id)
    if "scopes" in changed:
        audit_record(
            action=AuditAction.SCOPES_CHANGED,
            actor=actor,
            key=obj,
            before={"scopes": before.pop("scopes")},
            after={"scopes": obj.scopes},
            message=f"Now: {describe(obj.scopes)}",
        )
    if before:
        audit_record(
            action=AuditAction.EDITED,
            actor=actor,
            key=obj,
            before=before,
            after={f: getattr(obj, f) for f in before},
        )
    return obj


@transaction.atomic
def key_update_scopes(*, key: APIKey | int, scopes: Mapping[str, Any], actor: Actor) -> APIKey:
    """Replace a key's permissions (see key_update)."""
    return key_update(key=key, scopes=scopes, actor=actor)


@transaction.atomic
def key_revoke(*, key: APIKey | int, actor: Actor, reason: str = "") -> APIKey:
    """Revoke a key: immediate and permanent; the next request with it gets 401.
    Revoking a revoked key is refused, so each revocation has exactly one audit entry."""
    obj = _lock(key)
    now = timezone.now()
    if obj.revoked_at is not None:
        raise KeyStateError("This key is already revoked.")
    obj.revoked_at = now
    obj.revoked_by_label = actor.label[:150]
    obj.revoke_reason = reason[:200]
    obj.save(update_fields=["revoked_at", "revoked_by_label", "revoke_reason"])
    key_changed(obj.public_id)
    audit_record(
        action=AuditAction.REVOKED,
        actor=actor,
        key=obj,
        before={"status": "active"},
        after={"status": "revoked"},
        message=f"revoked: {reason}" if reason else "revoked",
    )
    return obj


GRACE_CHOICES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
MAX_GRACE = timedelta(days=30)


@dataclass(frozen=True)
class Rotated:
    key: APIKey  # the new key
    old_key: APIKey  # the old key, now in its grace period
    full_key: str  # the new key's value, shown once

    def __repr__(self) -> str:
        return f"Rotated(key={self.key!r}, old_key={self.old_key!r})"


@transaction.atomic
def key_rotate(*, key: APIKey | int, grace: timedelta, actor: Actor) -> Rotated:
    """Issue a new key value with the same name, description, permissions and settings. The
    old key keeps working until ``now + grace`` (or its own expiry, if sooner) and is then
    refused (enforced on every request from its timestamps; the grace job records the
    revocation). The old row is locked, so two concurrent rotations of one key make exactly
    one new key; rotating a key that is revoked, expired or already replaced is refused."""
    if grace <= timedelta(0) or grace > MAX_GRACE:
        raise KeyValidationError("The grace period must be more than 0 and at most 30 days.")
    old = _lock(key)
    now = timezone.now()
    status = old.status_at(now)
    if status != KeyStatus.ACTIVE:
        raise KeyStateError(
            f"This key is {status.label.lower()}; only an active key can be rotated."
        )
    if old.replaced_by_id is not None:
        raise KeyStateError("This key was already rotated; rotate its replacement instead.")
    if old.expiry_policy == ExpiryPolicy.CUSTOM:
        expires_at = old.expires_at
    else:
        expires_at = compute_expiry(old.expiry_policy, None, now=now)
    new, full = _insert_new_key(
        name=old.name,
        description=old.description,
        scopes=old.scopes,
        expiry_policy=old.expiry_policy,
        expires_at=expires_at,
        created_by=actor.user,
        created_by_label=actor.label[:150],
        alert_volume_per_hour=old.alert_volume_per_hour,
        alert_error_rate_percent=old.alert_error_rate_percent,
        alert_unused_days=old.alert_unused_days,
        alerts_muted=old.alerts_muted,
        rate_limit_per_minute=old.rate_limit_per_minute,
        allowed_ips=old.allowed_ips,
        allowed_origins=old.allowed_origins,
    )
    old.replaced_by = new
    # The old key never outlives its own expiry: a grace end past it would make the Sunset
    # header (and the "works until" message) promise time the key does not have.
    grace_ends_at = now + grace
    if old.expires_at is not None and old.expires_at < grace_ends_at:
        grace_ends_at = old.expires_at
    old.grace_ends_at = grace_ends_at
    old.save(update_fields=["replaced_by", "grace_ends_at"])
    key_changed(old.public_id)
    audit_record(
        action=AuditAction.ROTATED,
        actor=actor,
        key=old,
        after={"replaced_by": new.public_id, "grace_ends_at": old.grace_ends_at},
        message=f"Replaced by icrm_{new.public_id}…; old key works until {old.grace_ends_at:%Y-%m-%d %H:%M %Z}",
    )
    audit_record(
        action=AuditAction.GENERATED,
        actor=actor,
        key=new,
        after=snapshot(new),
        message=f"By rotation of icrm_{old.public_id}…",
    )
    return Rotated(key=new, old_key=old, full_key=full)


# --- Background jobs (keys/jobs.py loops over these) ---------------------------------------
# Each call handles one batch of due keys in one transaction. The rows are taken with
# select_for_update(skip_locked=True): an overlapping run skips the rows this one holds instead
# of queueing behind them, and PostgreSQL re-checks the filter on a row another run changed
# since the query's snapshot, so a key that run already handled no longer matches. Each key is
# therefore handled once, with one audit entry. (SQLite has no row locks; its IMMEDIATE
# transactions serialise whole batches, which gives the same guarantee.)

GRACE_ENDED_LABEL = "system"
GRACE_ENDED_REASON = "grace period ended after rotation"


def _lock_due(due: QuerySet[APIKey], batch_size: int) -> list[APIKey]:
    return list(due.select_for_update(skip_locked=True).order_by("pk")[:batch_size])


@transaction.atomic
def keys_revoke_grace_ended(
    *, actor: Actor, now: datetime | None = None, batch_size: int = 500
) -> list[APIKey]:
    """Revoke up to ``batch_size`` rotated keys whose grace period has ended. The key was
    already refused from that moment (enforcement reads grace_ends_at on every request), so
    revoked_at is the grace end, not the time this job happened to run: the record says when
    the key really stopped working. Returns the keys revoked by this call."""
    now = now or timezone.now()
    due = APIKey.objects.filter(grace_ends_at__lte=now, revoked_at__isnull=True)
    batch = _lock_due(due, batch_size)
    for key in batch:
        key.revoked_at = key.grace_ends_at
        key.revoked_by_label = GRACE_ENDED_LABEL
        key.revoke_reason = GRACE_ENDED_REASON
        key.save(update_fields=["revoked_at", "revoked_by_label", "revoke_reason"])
        key_changed(key.public_id)
        audit_record(
            action=AuditAction.REVOKED,
            actor=actor,
            key=key,
            before={"status": "active", "grace_ends_at": key.grace_ends_at},
            after={"status": "revoked", "revoked_at": key.revoked_at},
            message=f"revoked: {GRACE_ENDED_REASON}",
        )
    return batch


def expired_unrecorded(now: datetime) -> QuerySet[APIKey]:
    """Keys that reached their expiry while still usable (not revoked, grace not over, at the
    moment of expiry) and whose expiry has no audit entry yet. A key revoked before it would
    have expired never expired, so it gets no "expired" entry."""
    return APIKey.objects.filter(expires_at__lte=now, expiry_recorded_at__isnull=True).filter(
        Q(revoked_at__isnull=True) | Q(revoked_at__gt=F("expires_at")),
        Q(grace_ends_at__isnull=True) | Q(grace_ends_at__gt=F("expires_at")),
    )


@transaction.atomic
def keys_record_expiries(
    *, actor: Actor, now: datetime | None = None, batch_size: int = 500
) -> list[APIKey]:
    """Write the "expired" audit entry of up to ``batch_size`` keys whose expiry passed, once
    per key (expiry_recorded_at marks it done). Enforcement never waits for this: the key is
    refused from expires_at on. Returns the keys recorded by this call."""
    now = now or timezone.now()
    batch = _lock_due(expired_unrecorded(now), batch_size)
    for key in batch:
        key.expiry_recorded_at = now
        key.save(update_fields=["expiry_recorded_at"])
        audit_record(
            action=AuditAction.EXPIRED,
            actor=actor,
            key=key,
            before={"status": "active"},
            after={"status": "expired", "expires_at": key.expires_at},
            message=f"expired at {key.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        )
    return batch


def expiring_soon(now: datetime, within: timedelta) -> QuerySet[APIKey]:
    """Active keys that expire within ``within`` and have had no expiry reminder. A key already
    replaced by rotation is left out: its replacement exists and it stops at its grace end."""
    return APIKey.objects.active(now).filter(
        expires_at__gt=now,
        expires_at__lte=now + within,
        expiry_reminder_sent_at__isnull=True,
        replaced_by__isnull=True,
    )


@transaction.atomic
def keys_mark_expiry_reminded(
    *,
    actor: Actor,
    within: timedelta,
    recipients: list[str],
    now: datetime | None = None,
    batch_size: int = 500,
) -> list[APIKey]:
    """Mark up to ``batch_size`` soon-expiring keys as reminded, each with a "reminder" audit
    entry. The caller sends the e-mail inside the same transaction (see jobs), so a failed
    send rolls the marks back and the next run tries again."""
    now = now or timezone.now()
    batch = _lock_due(expiring_soon(now, within), batch_size)
    sent_to = (
        f"e-mailed to {len(recipients)} recipient(s)"
        if recipients
        else "no recipients configured (API_KEY_ALERT_RECIPIENTS), not e-mailed"
    )
    for key in batch:
        key.expiry_reminder_sent_at = now
        key.save(update_fields=["expiry_reminder_sent_at"])
        audit_record(
            action=AuditAction.REMINDER,
            actor=actor,
            key=key,
            after={"kind": "expiry", "expires_at": key.expires_at, "recipients": len(recipients)},
            message=(
                f"expiry reminder: expires {key.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC; "
                f"{sent_to}"
            ),
        )
    return batch
