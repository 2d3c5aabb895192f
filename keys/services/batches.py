"""The batch changes of the background jobs: revoke rotated keys whose grace ended, record
expiries, mark expiry reminders. ``keys/jobs.py`` loops over these until nothing is due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction
from audit.services import audit_record

from .. import selectors
from ..api.lookup import key_changed
from ..models import APIKey

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
    batch = _lock_due(selectors.grace_ended(now), batch_size)
    for key in batch:
        key.revoked_at = key.grace_ends_at
        key.revoked_by_label = GRACE_ENDED_LABEL
        key.revoke_reason = GRACE_ENDED_REASON
        key.save(update_fields=["revoked_at", "revoked_by_label", "revoke_reason"])
        # Not urgent: the key is already refused from its grace end, cached or not.
        key_changed(key.public_id, urgent=False, what="grace-end revocation")
        audit_record(
            action=AuditAction.REVOKED,
            actor=actor,
            key=key,
            before={"status": "active", "grace_ends_at": key.grace_ends_at},
            after={"status": "revoked", "revoked_at": key.revoked_at},
            message=f"revoked: {GRACE_ENDED_REASON}",
        )
    return batch


@transaction.atomic
def keys_record_expiries(
    *, actor: Actor, now: datetime | None = None, batch_size: int = 500
) -> list[APIKey]:
    """Write the "expired" audit entry of up to ``batch_size`` keys whose expiry passed, once
    per key (expiry_recorded_at marks it done). Enforcement never waits for this: the key is
    refused from expires_at on. Returns the keys recorded by this call."""
    now = now or timezone.now()
    batch = _lock_due(selectors.expired_unrecorded(now), batch_size)
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
    entry. The caller queues the digest in the outbox inside the same transaction (see jobs),
    so the marks and the mail commit together; the outbox sends it after commit."""
    now = now or timezone.now()
    batch = _lock_due(selectors.expiring_soon(now, within), batch_size)
    sent_to = (
        f"e-mailed to {len(recipients)} recipient(s)"
        if recipients
        else "no recipients configured (Admin > Alert recipients), not e-mailed"
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
