"""Alerts: when an episode of high volume, error spike, old key still in use, unused key,
rotation due, permissions unused or owner deactivated opens and when it clears (called by
keys.tasks; the two about who calls a key find their conditions in ``findings``).

An alert is one *episode* of a condition on a key: an ``Alert`` row, carrying the sentence it
was raised with, opened with its audit entry (one transaction) when the condition starts,
e-mailed once (``notify``), and resolved (with an audit entry) when the condition clears. The
partial unique constraint "one open alert per key and kind" makes opening idempotent, so two
evaluations running at once open one alert and send one e-mail. Thresholds come from the
``API_KEYS`` settings unless the key overrides them (None means the default); a muted key has
no open usage alerts. "Owner deactivated" is not a usage alert: muting does not silence it.
Only keys that can still be used are watched: every evaluation resolves the open alerts of keys
that stopped working. Admins acknowledge, snooze and resolve episodes through
``alerts.services``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction
from audit.services import audit_record

from ..conf import key_settings
from ..models import Alert, AlertKind, APIKey, KeyPolicy, UsageHour
from ..models.alerts import GOVERNANCE_KINDS
from ..usage.insights import scope_reviews
from .findings import Finding, grace_ending, old_key_in_use, unused_permissions
from .notify import notify_open_alerts

TRAFFIC_KINDS = (AlertKind.HIGH_VOLUME, AlertKind.ERROR_SPIKE, AlertKind.OLD_KEY_IN_USE)
DAILY_KINDS = (
    AlertKind.UNUSED,
    AlertKind.ROTATION_DUE,
    AlertKind.UNUSED_PERMISSIONS,
    AlertKind.OWNER_DEACTIVATED,
)
KEY_FIELDS = (
    "id",
    "name",
    "public_id",
    "scopes",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
    "grace_ends_at",
    "replaced_by_id",
    "alert_volume_per_hour",
    "alert_error_rate_percent",
    "alert_unused_days",
    "alerts_muted",
    "owner_id",
)


@dataclass(frozen=True)
class Thresholds:
    volume_per_hour: int
    error_rate_percent: float
    error_min_requests: int
    unused_days: int
    rotation_days: int


def thresholds_for(key: APIKey, rotation_days: int | None = None) -> Thresholds:
    """The key's own thresholds where it sets them, the API_KEYS defaults elsewhere; the
    rotation period is the key policy's (``rotation_days``, read once per evaluation)."""

    def pick(own: Any, default: Any) -> Any:
        return own if own is not None else default

    return Thresholds(
        volume_per_hour=int(pick(key.alert_volume_per_hour, key_settings.ALERT_VOLUME_PER_HOUR)),
        error_rate_percent=float(
            pick(key.alert_error_rate_percent, key_settings.ALERT_ERROR_RATE_PERCENT)
        ),
        error_min_requests=int(key_settings.ALERT_ERROR_MIN_REQUESTS),
        unused_days=int(pick(key.alert_unused_days, key_settings.ALERT_UNUSED_DAYS)),
        rotation_days=int(rotation_days or key_settings.ROTATION_REMINDER_DAYS),
    )


@dataclass
class Outcome:
    opened: int = 0
    resolved: int = 0
    notified: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"opened": self.opened, "resolved": self.resolved, "notified": self.notified}


# --- traffic: every 5 minutes -------------------------------------------------------------


def evaluate_traffic_alerts(now: datetime | None = None) -> dict[str, int]:
    """High volume and error spike, from the hourly rows (one aggregate query); old key still
    in use, for rotated keys whose grace ends within the hour (``findings``).

    "The last hour" is the last full hour and, so that a spike is caught before its hour ends,
    the current hour so far: the condition holds if either window crosses the threshold (an
    error-rate window counts only with at least ALERT_ERROR_MIN_REQUESTS requests), and clears
    when neither does."""
    now = now or timezone.now()
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    last_hour = this_hour - timedelta(hours=1)
    traffic: dict[int, list[tuple[datetime, int, int]]] = {}
    for row in (
        UsageHour.objects.filter(hour__in=[last_hour, this_hour])
        .values("key_id", "hour")
        .annotate(n=Sum("requests"), e=Sum("errors"))
        .order_by()
    ):
        traffic.setdefault(row["key_id"], []).append((row["hour"], row["n"], row["e"]))
    outcome = Outcome()
    actor = Actor.system("evaluate_alerts")
    _resolve_for_dead_keys(now, actor, outcome)
    open_alerts = _open_alerts(TRAFFIC_KINDS)
    key_ids = set(traffic) | {key_id for key_id, _ in open_alerts} | set(grace_ending(now))
    # Only keys that can still be used (active, or in a rotation's grace period): a revoked
    # key's 401s are errors, but nobody can act on them except the integration's owner.
    keys = (
        APIKey.objects.active(now)
        .filter(pk__in=key_ids)
        .select_related("replaced_by")
        .order_by("pk")
    )
    for key in keys.only(*KEY_FIELDS, "replaced_by__created_at", "replaced_by__public_id"):
        limits = thresholds_for(key)
        windows = traffic.get(key.pk, [])
        muted = key.alerts_muted
        findings = {
            AlertKind.HIGH_VOLUME: None if muted else _volume(windows, limits),
            AlertKind.ERROR_SPIKE: None if muted else _error_spike(windows, limits),
            AlertKind.OLD_KEY_IN_USE: None if muted else old_key_in_use(key, now),
        }
        for kind, finding in findings.items():
            _settle(key, kind, finding, open_alerts.get((key.pk, kind)), now, actor, outcome)
    outcome.notified = notify_open_alerts(TRAFFIC_KINDS, now)
    return outcome.as_dict()


def _window_name(hour: datetime) -> str:
    return f"the hour from {hour:%Y-%m-%d %H:00} UTC"


def _volume(windows: list[tuple[datetime, int, int]], limits: Thresholds) -> Finding | None:
    worst = max(windows, key=lambda w: w[1], default=None)
    if worst is None or worst[1] <= limits.volume_per_hour:
        return None
    return Finding(
        measured=worst[1],
        threshold=limits.volume_per_hour,
        message=(
            f"High volume: {worst[1]:,} requests in {_window_name(worst[0])} "
            f"(threshold {limits.volume_per_hour:,} per hour)."
        ),
    )


def _error_spike(windows: list[tuple[datetime, int, int]], limits: Thresholds) -> Finding | None:
    rated = [
        (100 * errors / requests, hour, requests, errors)
        for hour, requests, errors in windows
        if requests >= max(limits.error_min_requests, 1)
    ]
    worst = max(rated, default=None)
    if worst is None or worst[0] <= limits.error_rate_percent:
        return None
    rate, hour, requests, errors = worst
    return Finding(
        measured=round(rate, 2),
        threshold=limits.error_rate_percent,
        message=(
            f"Error spike: {rate:.1f}% of {requests:,} requests failed ({errors:,} errors) in "
            f"{_window_name(hour)} (threshold {limits.error_rate_percent:g}%)."
        ),
    )


# --- daily: unused keys and rotation reminders ----------------------------------------------


def evaluate_daily_alerts(now: datetime | None = None) -> dict[str, int]:
    """Unused keys (no request for ALERT_UNUSED_DAYS; a never-used key counts from its
    creation), rotation due (active, older than the key policy's rotation period, by default
    ROTATION_REMINDER_DAYS, not already replaced by a rotation), permissions unused
    (``findings``) and owner deactivated (the key's owner is no longer an active user). Alerts
    of keys that are no longer active are resolved."""
    now = now or timezone.now()
    outcome = Outcome()
    actor = Actor.system("daily_reminders")
    _resolve_for_dead_keys(now, actor, outcome)
    open_alerts = _open_alerts(DAILY_KINDS)
    rotation_days = KeyPolicy.current().rotation_period_days()
    keys = list(
        APIKey.objects.active(now)
        .only(*KEY_FIELDS)
        .annotate(owner_name=F("owner__username"), owner_active=F("owner__is_active"))
        .order_by("pk")
    )
    reviews = scope_reviews(keys, now)  # which permissions each key used (two queries)
    for key in keys:
        limits = thresholds_for(key, rotation_days)
        muted = key.alerts_muted
        idle = None if muted else _unused(key, limits, now)
        findings = {
            AlertKind.UNUSED: idle,
            AlertKind.ROTATION_DUE: None if muted else _rotation_due(key, limits, now),
            # An idle key has the "unused key" alert: every permission unused says no more.
            AlertKind.UNUSED_PERMISSIONS: (
                None if muted or idle else unused_permissions(reviews[key.pk])
            ),
            AlertKind.OWNER_DEACTIVATED: _owner_deactivated(key),
        }
        for kind, finding in findings.items():
            _settle(key, kind, finding, open_alerts.get((key.pk, kind)), now, actor, outcome)
    outcome.notified = notify_open_alerts(DAILY_KINDS, now)
    return outcome.as_dict()


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400


def _unused(key: APIKey, limits: Thresholds, now: datetime) -> Finding | None:
    since = key.last_used_at or key.created_at
    idle = _days(now - since)
    if idle <= limits.unused_days:
        return None
    what = "was last used" if key.last_used_at else "has never been used; it was created"
    return Finding(
        measured=round(idle, 1),
        threshold=limits.unused_days,
        message=(
            f"Unused key: it {what} {int(idle)} days ago ({since:%Y-%m-%d}); threshold "
            f"{limits.unused_days} days. It may be safe to revoke."
        ),
    )


def _rotation_due(key: APIKey, limits: Thresholds, now: datetime) -> Finding | None:
    age = _days(now - key.created_at)
    if key.replaced_by_id is not None or age <= limits.rotation_days:
        return None
    return Finding(
        measured=round(age, 1),
        threshold=limits.rotation_days,
        message=(
            f"Rotation due: the key is {int(age)} days old (created {key.created_at:%Y-%m-%d}); "
            f"rotate keys every {limits.rotation_days} days."
        ),
    )


def _owner_deactivated(key: APIKey) -> Finding | None:
    if key.owner_id is None or key.owner_active:  # type: ignore[attr-defined]
        return None
    return Finding(
        measured=0,
        threshold=0,
        message=(
            f"Owner deactivated: {key.owner_name}, who answers for this key, is no longer an "  # type: ignore[attr-defined]
            "active user. Give the key an active owner, or revoke it."
        ),
    )


# --- episodes -------------------------------------------------------------------------------


def _resolve_for_dead_keys(now: datetime, actor: Actor, outcome: Outcome) -> None:
    """Close every open alert, of any kind, on a key that no longer works (revoked, expired,
    grace over): there is nothing left to watch, and its page is read-only."""
    dead = Alert.objects.filter(resolved_at__isnull=True).exclude(
        key__in=APIKey.objects.active(now)
    )
    for alert in dead.select_related("key").order_by("pk"):
        status = alert.key.status_at(now).label.lower()
        if _resolve(alert, now, actor, f"The key no longer works ({status})."):
            outcome.resolved += 1


def _open_alerts(kinds: Iterable[str]) -> dict[tuple[int, str], Alert]:
    return {
        (alert.key_id, alert.kind): alert
        for alert in Alert.objects.filter(resolved_at__isnull=True, kind__in=list(kinds))
    }


def _settle(
    key: APIKey,
    kind: str,
    finding: Finding | None,
    open_alert: Alert | None,
    now: datetime,
    actor: Actor,
    outcome: Outcome,
) -> None:
    if finding is not None and open_alert is None:
        if open_alert_for(key, kind, finding, now, actor) is not None:
            outcome.opened += 1
    elif finding is None and open_alert is not None:
        muted = key.alerts_muted and kind not in GOVERNANCE_KINDS
        reason = "Alerts are muted on this key." if muted else "The condition cleared."
        if _resolve(open_alert, now, actor, reason):
            outcome.resolved += 1


def open_alert_for(
    key: APIKey, kind: str, finding: Finding, now: datetime, actor: Actor
) -> Alert | None:
    """Open an episode with its audit entry, or None when one is already open (also when a
    concurrent evaluation opened it a moment ago: the unique open constraint refuses a second)."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                key=key,
                kind=kind,
                measured_value=finding.measured,
                threshold=finding.threshold,
                message=finding.message,
                opened_at=now,
            )
            audit_record(
                action=AuditAction.ALERT_RAISED,
                actor=actor,
                key=key,
                after={
                    "kind": kind,
                    "measured_value": finding.measured,
                    "threshold": finding.threshold,
                },
                message=finding.message,
            )
    except IntegrityError:
        return None
    return alert


def _resolve(alert: Alert, now: datetime, actor: Actor, reason: str) -> bool:
    """Close an episode once (a conditional update), with its audit entry."""
    with transaction.atomic():
        closed = Alert.objects.filter(pk=alert.pk, resolved_at__isnull=True).update(
            resolved_at=now, resolution=reason
        )
        if closed:
            audit_record(
                action=AuditAction.ALERT_RESOLVED,
                actor=actor,
                key=alert.key,
                after={"kind": alert.kind, "opened_at": alert.opened_at},
                message=f"{alert.get_kind_display()} resolved: {reason}",
            )
    return bool(closed)
