"""Celery tasks: thin wrappers over job services, each idempotent and safe to run twice at once.

The beat schedule is CELERY_BEAT_SCHEDULE in settings; `manage.py runjob <name>` runs one once.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from . import jobs
from .alerts import outbox, rules
from .usage import flush, prune


@shared_task(name="keys.tasks.revoke_grace_ended")
def revoke_grace_ended() -> Any:
    """Record the revocation of rotated keys whose grace period ended (every minute)."""
    return jobs.revoke_grace_ended()


@shared_task(name="keys.tasks.record_expiries")
def record_expiries() -> Any:
    """One "expired" audit entry per key whose expiry passed (every minute)."""
    return jobs.record_expiries()


@shared_task(name="keys.tasks.flush_usage")
def flush_usage() -> Any:
    """Move usage counters into hourly rows (every minute)."""
    return flush.flush()


@shared_task(name="keys.tasks.evaluate_alerts")
def evaluate_alerts() -> Any:
    """High-volume and error-spike alerts (every 5 minutes)."""
    return rules.evaluate_traffic_alerts()


@shared_task(name="keys.tasks.daily_reminders")
def daily_reminders() -> Any:
    """Expiry reminders, unused-key alerts and rotation reminders (daily)."""
    return {"expiry": jobs.send_expiry_reminders(), "alerts": rules.evaluate_daily_alerts()}


@shared_task(name="keys.tasks.prune_usage")
def prune_usage() -> Any:
    """Delete hourly usage rows older than the retention setting (daily)."""
    return prune.prune()


@shared_task(name="keys.tasks.send_outbox")
def send_outbox() -> Any:
    """Send queued alert and reminder e-mails (every minute): retries, and mails whose sender
    died mid-send."""
    return outbox.deliver()


@shared_task(name="keys.tasks.record_audit_head")
def record_audit_head() -> Any:
    """Verify the audit chain against the head recorded last, and record today's (daily)."""
    from audit.anchor import record_head

    return record_head()


JOBS = {
    "revoke_grace_ended": revoke_grace_ended,
    "record_expiries": record_expiries,
    "flush_usage": flush_usage,
    "evaluate_alerts": evaluate_alerts,
    "daily_reminders": daily_reminders,
    "prune_usage": prune_usage,
    "send_outbox": send_outbox,
    "record_audit_head": record_audit_head,
}
