"""A real Celery worker (against the configured broker: Redis when REDIS_URL is set, the
filesystem transport otherwise) runs the flush and alert jobs; their effect is in the database."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from audit.actors import Actor
from crm_keys.celery import app
from keys import services, tasks
from keys.models import Alert, AlertKind, UsageHour
from keys.usage import stats
from tests.helpers import bearer


def wait_for(condition: Callable[[], bool]) -> bool:
    """Poll for another thread's work (never asserts on time: the limit only stops a hang)."""
    for _ in range(600):
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_flushes_usage_and_raises_alerts(api, backend):
    generated = services.key_generate(
        name="Busy integration", scopes={"contacts": ["view"]}, actor=Actor(label="test")
    )
    key = generated.key
    services.key_update(key=key, data={"alert_volume_per_hour": 4}, actor=Actor(label="test"))
    for _ in range(5):
        assert api.get("/api/v1/contacts/", **bearer(generated.full_key)).status_code == 200
    assert api.get("/api/v1/leads/", **bearer(generated.full_key)).status_code == 403

    with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
        tasks.flush_usage.delay()
        assert wait_for(lambda: UsageHour.objects.filter(key=key).exists())
        tasks.evaluate_alerts.delay()
        assert wait_for(lambda: Alert.objects.filter(key=key, kind=AlertKind.HIGH_VOLUME).exists())
        assert wait_for(lambda: len(mail.outbox) == 1)

    figures = stats.key_usage(key)
    assert figures["total_requests"] == 6
    assert figures["total_errors"] == 1
    key.refresh_from_db()
    assert key.last_used_at is not None
    alert = Alert.objects.get(key=key)
    assert (alert.measured_value, alert.threshold) == (6, 4)
    assert alert.notified_at is not None
    assert "High volume" in mail.outbox[0].subject
