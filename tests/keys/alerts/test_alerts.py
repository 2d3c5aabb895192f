"""Alerts with a moved clock: each kind opens once, e-mails once, does not repeat, resolves,
and opens again (a new episode, a new e-mail)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from keys import services
from keys.alerts import rules
from keys.models import Alert, AlertKind
from keys.usage import flush
from keys.usage import rows as usage_rows
from tests import smtp
from tests.helpers import bearer

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
ACTOR = Actor(label="test-admin")


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def count(key, hour: datetime, requests: int, errors: int = 0, *, used: bool = True) -> None:
    """Counts of one hour, written the way a flush writes them."""
    usage_rows.write_counts(
        uuid.uuid4().hex,
        {(key.pk, usage_rows.hour_index(hour), "GET /api/v1/contacts/"): [requests, errors]},
        {key.pk: hour.timestamp() + 60} if used else {},
    )


def alerts_of(key, kind) -> list[Alert]:
    return list(Alert.objects.filter(key=key, kind=kind).order_by("opened_at"))


def audit_actions(key) -> list[str]:
    return list(
        AuditEntry.objects.filter(
            key_id=key.pk, action__in=[AuditAction.ALERT_RAISED, AuditAction.ALERT_RESOLVED]
        )
        .order_by("seq")
        .values_list("action", flat=True)
    )


def test_high_volume_fires_once_resolves_and_fires_again(make_key, clock):
    key, _ = make_key(name="Zapier")
    services.key_update(key=key, data={"alert_volume_per_hour": 5}, actor=ACTOR)
    count(key, datetime(2026, 3, 2, 9, tzinfo=UTC), 6)  # the last full hour

    assert rules.evaluate_traffic_alerts() == {"opened": 1, "resolved": 0, "notified": 1}
    [alert] = alerts_of(key, AlertKind.HIGH_VOLUME)
    assert (alert.measured_value, alert.threshold, alert.resolved_at) == (6, 5, None)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com", "security@example.com"]
    assert "High volume" in message.subject and key.display_id in message.subject
    assert "6 requests" in message.body and "threshold 5" in message.body

    clock.shift(timedelta(minutes=5))  # still the same episode: no new alert, no new mail
    assert rules.evaluate_traffic_alerts() == {"opened": 0, "resolved": 0, "notified": 0}
    assert len(mail.outbox) == 1

    clock.move_to(datetime(2026, 3, 2, 11, 5, tzinfo=UTC))  # hours 10 and 11 are quiet
    assert rules.evaluate_traffic_alerts()["resolved"] == 1
    assert alerts_of(key, AlertKind.HIGH_VOLUME)[0].resolved_at is not None
    assert len(mail.outbox) == 1

    count(key, datetime(2026, 3, 2, 11, tzinfo=UTC), 7)  # caught before its hour ends
    assert rules.evaluate_traffic_alerts()["opened"] == 1
    assert len(alerts_of(key, AlertKind.HIGH_VOLUME)) == 2
    assert len(mail.outbox) == 2
    assert audit_actions(key) == ["alert_raised", "alert_resolved", "alert_raised"]


def test_two_alerts_opened_together_each_e_mail_carries_its_own_text(make_key, clock):
    """One evaluation opens a high-volume and an error-spike alert on the same key: each e-mail
    (and each alert row) says its own kind's sentence, not the newest audit entry's."""
    key, _ = make_key(name="Busy")
    count(key, datetime(2026, 3, 2, 9, tzinfo=UTC), 10_150, 1_150)  # 11.3 % errors
    assert rules.evaluate_traffic_alerts() == {"opened": 2, "resolved": 0, "notified": 2}
    [volume] = alerts_of(key, AlertKind.HIGH_VOLUME)
    [spike] = alerts_of(key, AlertKind.ERROR_SPIKE)
    assert volume.message.startswith("High volume: 10,150 requests")
    assert spike.message.startswith("Error spike: 11.3% of 10,150 requests failed")
    mails = {m.subject.split(": ", 1)[1].split(" on API key")[0]: m.body for m in mail.outbox}
    assert set(mails) == {"High volume", "Error spike"}
    assert volume.message in mails["High volume"] and "Error spike" not in mails["High volume"]
    assert spike.message in mails["Error spike"] and "High volume:" not in mails["Error spike"]


def test_high_volume_default_comes_from_settings(make_key, clock, settings):
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_VOLUME_PER_HOUR": 100}
    key, _ = make_key()
    count(key, datetime(2026, 3, 2, 9, tzinfo=UTC), 100)
    assert rules.evaluate_traffic_alerts()["opened"] == 0  # not more than the threshold
    count(key, datetime(2026, 3, 2, 9, tzinfo=UTC), 1)
    assert rules.evaluate_traffic_alerts()["opened"] == 1


def test_error_spike_needs_the_rate_and_the_minimum_requests(make_key, clock):
    key, _ = make_key()
    count(key, datetime(2026, 3, 2, 9, tzinfo=UTC), 19, 10)  # 53% but only 19 requests
    assert rules.evaluate_traffic_alerts()["opened"] == 0
    count(key, datetime(2026, 3, 2, 9, tzinfo=UTC), 1, 0)  # 20 requests, 50%
    assert rules.evaluate_traffic_alerts()["opened"] == 1
    [alert] = alerts_of(key, AlertKind.ERROR_SPIKE)
    assert (alert.measured_value, alert.threshold) == (50.0, 10.0)
    assert "Error spike" in mail.outbox[0].subject
    assert rules.evaluate_traffic_alerts()["opened"] == 0
    assert len(mail.outbox) == 1

    clock.move_to(datetime(2026, 3, 2, 11, 5, tzinfo=UTC))
    count(key, datetime(2026, 3, 2, 10, tzinfo=UTC), 100, 10)  # exactly 10%: not above
    assert rules.evaluate_traffic_alerts()["resolved"] == 1
    count(key, datetime(2026, 3, 2, 11, tzinfo=UTC), 30, 4)  # 13% so far this hour
    assert rules.evaluate_traffic_alerts()["opened"] == 1
    assert len(mail.outbox) == 2


def test_error_spike_from_real_traffic_and_a_per_key_threshold(api, make_key, clock):
    key, full = make_key({"contacts": ["view"]})
    other, other_full = make_key({"contacts": ["view"]}, name="tolerant")
    services.key_update(key=other, data={"alert_error_rate_percent": 50.0}, actor=ACTOR)
    for token in (full, other_full):
        for _ in range(16):
            assert api.get("/api/v1/contacts/", **bearer(token)).status_code == 200
        for _ in range(4):
            assert api.get("/api/v1/leads/", **bearer(token)).status_code == 403
    flush.flush()
    assert rules.evaluate_traffic_alerts()["opened"] == 1  # 20% > 10%, but not > 50%
    assert alerts_of(key, AlertKind.ERROR_SPIKE)[0].measured_value == 20.0
    assert alerts_of(other, AlertKind.ERROR_SPIKE) == []


def test_unused_counts_from_creation_fires_once_resolves_and_fires_again(make_key, clock):
    key, _ = make_key(name="Forgotten")
    clock.shift(timedelta(days=30))
    assert rules.evaluate_daily_alerts()["opened"] == 0  # 30 days: not more than 30
    clock.shift(timedelta(days=1))
    assert rules.evaluate_daily_alerts() == {"opened": 1, "resolved": 0, "notified": 1}
    [alert] = alerts_of(key, AlertKind.UNUSED)
    assert alert.threshold == 30 and alert.measured_value == 31
    assert "never been used" in mail.outbox[0].body
    assert "Unused key" in mail.outbox[0].subject

    clock.shift(timedelta(days=1))
    assert rules.evaluate_daily_alerts()["opened"] == 0
    assert len(mail.outbox) == 1

    count(key, usage_rows.hour_of(datetime.now(UTC)), 1)  # used again
    assert rules.evaluate_daily_alerts()["resolved"] == 1
    clock.shift(timedelta(days=31))
    assert rules.evaluate_daily_alerts()["opened"] == 1
    assert "was last used" in mail.outbox[1].body
    assert len(alerts_of(key, AlertKind.UNUSED)) == 2
    assert len(mail.outbox) == 2


def test_unused_per_key_threshold_and_revoked_keys(make_key, clock):
    key, _ = make_key()
    services.key_update(key=key, data={"alert_unused_days": 7}, actor=ACTOR)
    clock.shift(timedelta(days=8))
    assert rules.evaluate_daily_alerts()["opened"] == 1
    services.key_revoke(key=key, actor=ACTOR)  # revoked: no longer worth an alert
    assert rules.evaluate_daily_alerts()["resolved"] == 1
    assert Alert.objects.filter(resolved_at__isnull=True).count() == 0


def test_rotation_due_fires_once_and_resolves_when_rotated(make_key, clock):
    key, _ = make_key(name="Old integration", expiry_policy="never")
    count(key, datetime(2026, 3, 2, 10, tzinfo=UTC), 1)
    clock.shift(timedelta(days=90))
    count(key, usage_rows.hour_of(datetime.now(UTC)), 1)  # in use, so only rotation is due
    assert rules.evaluate_daily_alerts()["opened"] == 0
    clock.shift(timedelta(days=1))
    count(key, usage_rows.hour_of(datetime.now(UTC)), 1)
    assert rules.evaluate_daily_alerts() == {"opened": 1, "resolved": 0, "notified": 1}
    [alert] = alerts_of(key, AlertKind.ROTATION_DUE)
    assert alert.threshold == 90
    assert "Rotation due" in mail.outbox[0].subject
    assert rules.evaluate_daily_alerts()["opened"] == 0

    rotated = services.key_rotate(key=key, grace=timedelta(hours=1), actor=ACTOR)
    assert rules.evaluate_daily_alerts()["resolved"] == 1  # replaced: no longer due
    assert alerts_of(rotated.key, AlertKind.ROTATION_DUE) == []
    clock.shift(timedelta(days=91))
    count(rotated.key, usage_rows.hour_of(datetime.now(UTC)), 1)
    assert rules.evaluate_daily_alerts()["opened"] == 1  # the new key, 91 days later
    assert len(alerts_of(rotated.key, AlertKind.ROTATION_DUE)) == 1
    assert len(mail.outbox) == 2


def test_muting_resolves_and_unmuting_fires_again(make_key, clock):
    key, _ = make_key()
    clock.shift(timedelta(days=31))
    assert rules.evaluate_daily_alerts()["opened"] == 1
    services.key_update(key=key, data={"alerts_muted": True}, actor=ACTOR)
    assert rules.evaluate_daily_alerts()["resolved"] == 1
    assert rules.evaluate_daily_alerts()["opened"] == 0
    services.key_update(key=key, data={"alerts_muted": False}, actor=ACTOR)
    assert rules.evaluate_daily_alerts()["opened"] == 1
    assert len(mail.outbox) == 2


def test_a_failed_e_mail_is_sent_by_the_next_run_and_only_once(make_key, clock, settings):
    key, _ = make_key()
    clock.shift(timedelta(days=31))
    smtp.use(settings, smtp.free_port())  # the mail server is down
    assert rules.evaluate_daily_alerts()["notified"] == 1  # queued with the alert
    assert Alert.objects.get(key=key).notified_at is not None
    with smtp.MailServer() as server:
        smtp.use(settings, server.port)
        clock.shift(timedelta(minutes=1))
        assert rules.evaluate_daily_alerts()["notified"] == 0  # the outbox sends it
        assert rules.evaluate_daily_alerts()["notified"] == 0
    (message,) = server.messages
    assert "Unused key" in message["Subject"]


def test_no_recipients_no_mail_but_the_alert_is_recorded(make_key, clock, settings):
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": []}
    make_key()
    clock.shift(timedelta(days=31))
    assert rules.evaluate_daily_alerts() == {"opened": 1, "resolved": 0, "notified": 0}
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_once_open_one_alert_and_send_one_mail(make_key, settings):
    key, _ = make_key()
    services.key_update(key=key, data={"alert_volume_per_hour": 5}, actor=ACTOR)
    now = datetime.now(UTC)
    count(key, usage_rows.hour_of(now), 10)
    barrier = threading.Barrier(3)
    results = []

    def evaluate():
        try:
            barrier.wait()
            results.append(rules.evaluate_traffic_alerts())
        finally:
            connection.close()

    threads = [threading.Thread(target=evaluate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["opened"] for r in results) == 1
    assert sum(r["notified"] for r in results) == 1
    assert Alert.objects.filter(key=key).count() == 1
    assert len(mail.outbox) == 1
    assert audit_actions(key) == ["alert_raised"]
