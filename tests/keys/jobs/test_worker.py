"""A real Celery worker, on the configured broker (Redis when REDIS_URL is set, the filesystem
transport otherwise), runs the rotation and expiry jobs end to end: the task goes through the
broker, the worker runs it, the effect and its system audit entry land in the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from celery.beat import Scheduler
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from crm_keys.celery import app
from keys import tasks
from keys.models import APIKey, ExpiryPolicy
from tests.helpers import generate, rotated_keys_due, wait_for


def revoked_with_its_entry(key: APIKey) -> bool:
    return (
        APIKey.objects.filter(pk=key.pk, revoked_at__isnull=False).exists()
        and AuditEntry.objects.filter(
            key_id=key.pk, action=AuditAction.REVOKED, actor_label="system:revoke_grace_ended"
        ).exists()
    )


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_revokes_a_key_whose_grace_ended_and_records_expiries():
    (old,) = rotated_keys_due(1)
    with time_machine.travel(timezone.now() - timedelta(days=31), tick=False):
        expiring = generate("Expired", expiry_policy=ExpiryPolicy.DAYS_30).key
    assert old.revoked_at is None

    with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
        tasks.revoke_grace_ended.delay()
        assert wait_for(lambda: revoked_with_its_entry(old))

        # The way beat sends it: the schedule entry from settings, through the broker.
        beat = Scheduler(app=app)
        beat.apply_async(beat.schedule["record-expiries"])
        assert wait_for(
            lambda: AuditEntry.objects.filter(
                key_id=expiring.pk, action=AuditAction.EXPIRED, actor_label="system:record_expiries"
            ).exists()
        )

    old.refresh_from_db()
    assert old.revoked_at == old.grace_ends_at
    assert (old.revoked_by_label, old.revoke_reason) == (
        "system",
        "grace period ended after rotation",
    )
    assert AuditEntry.objects.filter(key_id=old.pk, action=AuditAction.REVOKED).count() == 1
    assert APIKey.objects.get(pk=expiring.pk).expiry_recorded_at is not None
