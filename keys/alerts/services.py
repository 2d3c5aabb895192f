"""Every change an admin makes to alerts: acknowledge, snooze, resolve an alert; add and remove
an alert recipient. Like ``keys.services``: keyword-only, an ``actor``, one transaction, the row
locked, the audit entry written in that same transaction."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction
from audit.services import audit_record

from ..models import Alert, AlertRecipient
from ..models.keys import when_text

SNOOZE_HOURS = (1, 24, 168)
SNOOZE_MESSAGE = "Snooze for 1 hour, 24 hours or 7 days."


class AlertServiceError(Exception):
    """A refused change, with a message fit to show an admin."""


def _lock(alert: Alert | int) -> Alert:
    pk = alert.pk if isinstance(alert, Alert) else alert
    locked = Alert.objects.select_for_update().select_related("key").get(pk=pk)
    refusal = locked.handling_refusal()
    if refusal:
        raise AlertServiceError(refusal)
    return locked


@transaction.atomic
def alert_acknowledge(*, alert: Alert | int, actor: Actor) -> Alert:
    """Someone is on it. The episode stays open until its condition clears (or is resolved)."""
    obj = _lock(alert)
    refusal = obj.acknowledge_refusal()
    if refusal:
        raise AlertServiceError(refusal)
    obj.acknowledged_at = timezone.now()
    obj.acknowledged_by = actor.label[:150]
    obj.save(update_fields=["acknowledged_at", "acknowledged_by"])
    audit_record(
        action=AuditAction.ALERT_ACKNOWLEDGED,
        actor=actor,
        key=obj.key,
        after={"kind": obj.kind, "alert": obj.pk},
        message=f"{obj.get_kind_display()} acknowledged",
    )
    return obj


@transaction.atomic
def alert_snooze(*, alert: Alert | int, hours: int, actor: Actor) -> Alert:
    """Quiet until ``hours`` from now: out of the "needs attention" views and not e-mailed
    meanwhile. If the condition still holds then, it shows again (and is e-mailed if it never
    was); if it clears, it resolves as usual."""
    if hours not in SNOOZE_HOURS:
        raise AlertServiceError(SNOOZE_MESSAGE)
    obj = _lock(alert)
    obj.snoozed_until = timezone.now() + timedelta(hours=hours)
    obj.save(update_fields=["snoozed_until"])
    audit_record(
        action=AuditAction.ALERT_SNOOZED,
        actor=actor,
        key=obj.key,
        after={"kind": obj.kind, "alert": obj.pk, "snoozed_until": obj.snoozed_until},
        message=f"{obj.get_kind_display()} snoozed until {when_text(obj.snoozed_until)}",
    )
    return obj


@transaction.atomic
def alert_resolve(*, alert: Alert | int, actor: Actor, note: str = "") -> Alert:
    """Close the episode by hand. If its condition still holds at the next evaluation, a new
    episode opens (and is e-mailed): to stop that, change the key's threshold or mute it."""
    obj = _lock(alert)
    obj.resolved_at = timezone.now()
    note = note.strip()[:200]
    obj.resolution = f"Resolved by {actor.label}" + (f": {note}" if note else "")
    obj.save(update_fields=["resolved_at", "resolution"])
    audit_record(
        action=AuditAction.ALERT_RESOLVED,
        actor=actor,
        key=obj.key,
        after={"kind": obj.kind, "alert": obj.pk, "opened_at": obj.opened_at},
        message=f"{obj.get_kind_display()} resolved: {obj.resolution}",
    )
    return obj


@transaction.atomic
def recipient_add(*, email: str, actor: Actor) -> AlertRecipient:
    """Store an address for alert and reminder e-mails (normalised to lower case)."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise AlertServiceError("Enter a valid e-mail address.") from None
    if AlertRecipient.objects.filter(email=email).exists():
        raise AlertServiceError(f"{email} is already a recipient.")
    recipient = AlertRecipient.objects.create(email=email, added_by=actor.label[:150])
    audit_record(
        action=AuditAction.RECIPIENT_ADDED,
        actor=actor,
        after={"email": email},
        message=f"alert e-mails now also go to {email}",
    )
    return recipient


@transaction.atomic
def recipient_remove(*, recipient: AlertRecipient | int, actor: Actor) -> None:
    pk = recipient.pk if isinstance(recipient, AlertRecipient) else recipient
    obj = AlertRecipient.objects.select_for_update().filter(pk=pk).first()
    if obj is None:
        return  # removed meanwhile: nothing left to do (and nothing to record twice)
    obj.delete()
    audit_record(
        action=AuditAction.RECIPIENT_REMOVED,
        actor=actor,
        before={"email": obj.email},
        message=f"alert e-mails no longer go to {obj.email}",
    )
