"""The rotation and expiry jobs that Celery beat runs (keys.tasks) and `runjob` runs by hand.

Each job loops over batches of due keys until none is left, every batch in its own
transaction through a service in keys/services.py, and returns a small dict of counts.
Enforcement never depends on them: a key past its grace end or expiry is refused on every
request from its timestamps. The jobs make the record match (revoked_at, the audit entries)
and send the reminders; run late, twice or at the same time, they do each thing once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from audit.actors import Actor

from . import services
from .alerts import notify, outbox
from .conf import key_settings
from .models import APIKey

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500


def _drain(step: Callable[[], list[APIKey]], batch_size: int, what: str) -> tuple[int, int]:
    """Run ``step`` (one batch, one transaction) until a short batch says no unlocked due key
    is left; rows an overlapping run holds are that run's to finish. Returns (keys, batches)."""
    done = batches = 0
    while True:
        batch = step()
        if batch:
            batches += 1
            done += len(batch)
            logger.info(
                "%s %d key(s): %s",
                what,
                len(batch),
                ", ".join(key.display_id for key in batch[:20]),
            )
        if len(batch) < batch_size:
            return done, batches


def revoke_grace_ended(
    batch_size: int = DEFAULT_BATCH_SIZE, *, now: datetime | None = None
) -> dict[str, int]:
    """Revoke every rotated key whose grace period ended (revoked_at = its grace end, revoked
    by "system", one audit entry each)."""
    now = now or timezone.now()
    actor = Actor.system("revoke_grace_ended")
    revoked, batches = _drain(
        lambda: services.keys_revoke_grace_ended(actor=actor, now=now, batch_size=batch_size),
        batch_size,
        "revoked (grace period ended)",
    )
    return {"revoked": revoked, "batches": batches}


def record_expiries(
    batch_size: int = DEFAULT_BATCH_SIZE, *, now: datetime | None = None
) -> dict[str, int]:
    """One "expired" audit entry per key whose expiry passed, once per key."""
    now = now or timezone.now()
    actor = Actor.system("record_expiries")
    recorded, batches = _drain(
        lambda: services.keys_record_expiries(actor=actor, now=now, batch_size=batch_size),
        batch_size,
        "recorded the expiry of",
    )
    return {"recorded": recorded, "batches": batches}


def send_expiry_reminders(
    batch_size: int = DEFAULT_BATCH_SIZE, *, now: datetime | None = None
) -> dict[str, int]:
    """Remind the configured recipients, once per key, of active keys that expire within
    ``EXPIRY_REMINDER_DAYS`` days.

    One digest e-mail per batch (in practice one per daily run) rather than one per key: the
    recipients are the same few admins for every key, and a week in which forty keys expire
    should be one message to act on, not forty. Each key is marked (expiry_reminder_sent_at,
    plus a "reminder" audit entry) in the transaction that queues the digest in the outbox, so
    a key is in exactly one digest; the outbox sends it after that transaction committed (at
    least once, retrying while the mail server is down), so a slow or stalled mail server
    never holds the batch's rows or the audit chain's lock. With no recipients configured the
    keys are still marked and audited (and a warning logged), so that configuring recipients
    later does not unleash a backlog of stale reminders.

    The mail names keys by name and public id only; a key's secret is never stored, so it
    cannot be in it."""
    now = now or timezone.now()
    actor = Actor.system("send_expiry_reminders")
    within = timedelta(days=key_settings.EXPIRY_REMINDER_DAYS)
    recipients = notify.recipients()
    reminded = emails = 0
    while True:
        with transaction.atomic():
            batch = services.keys_mark_expiry_reminded(
                actor=actor,
                within=within,
                recipients=recipients,
                now=now,
                batch_size=batch_size,
            )
            if batch and recipients:
                notify.send_expiry_digest(batch, within, recipients)
        if batch:
            reminded += len(batch)
            if recipients:
                emails += 1
            else:
                logger.warning(
                    "%d key(s) expire within %d days but no alert recipient is configured "
                    "(Admin > Alert recipients, or API_KEY_ALERT_RECIPIENTS); "
                    "recorded in the audit log only: %s",
                    len(batch),
                    within.days,
                    ", ".join(key.display_id for key in batch[:20]),
                )
        if len(batch) < batch_size:
            break
    if emails:
        outbox.deliver()
    return {"reminded": reminded, "emails": emails}
