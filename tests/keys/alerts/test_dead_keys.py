"""Alerts only for keys that can still be used (active, or in a rotation's grace period): a
revoked or expired key's 401s are errors, but no reason to page anyone, and its page is
read-only, so an e-mail saying "mute it on the key page" would be a dead end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from audit.actors import Actor
from keys import services
from keys.alerts import rules
from keys.models import Alert, AlertKind
from keys.usage import rows as usage_rows

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
LAST_HOUR = datetime(2026, 3, 2, 9, tzinfo=UTC)
ACTOR = Actor(label="test-admin")


def count(key, hour: datetime, requests: int, errors: int = 0) -> None:
    usage_rows.write_counts(
        uuid.uuid4().hex,
        {(key.pk, usage_rows.hour_index(hour), "GET /api/v1/contacts/"): [requests, errors]},
        {key.pk: hour.timestamp() + 60},
    )


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def test_no_error_spike_on_a_key_revoked_before_its_401s(make_key, clock):
    key, _ = make_key(name="Retired")
    services.key_revoke(key=key, actor=ACTOR)
    count(key, LAST_HOUR, 50, 50)  # the integration keeps calling: 401, 401, ...
    assert rules.evaluate_traffic_alerts() == {"opened": 0, "resolved": 0, "notified": 0}
    assert not Alert.objects.exists() and mail.outbox == []


def test_no_alert_on_an_expired_key(make_key, clock):
    key, _ = make_key(
        name="Expired", expiry_policy="custom", expiry_date=T0.date() + timedelta(days=1)
    )
    clock.shift(timedelta(days=3))
    count(key, usage_rows.hour_of(datetime.now(UTC)) - timedelta(hours=1), 50, 50)
    assert rules.evaluate_traffic_alerts()["opened"] == 0


def test_a_key_in_grace_is_still_watched(make_key, clock):
    key, _ = make_key(name="Rotating")
    services.key_rotate(key=key, grace=timedelta(days=7), actor=ACTOR)
    count(key, LAST_HOUR, 50, 50)
    assert rules.evaluate_traffic_alerts()["opened"] == 1


def test_open_alerts_of_a_key_that_stopped_working_are_resolved(make_key, clock):
    key, _ = make_key(name="Noisy")
    count(key, LAST_HOUR, 50, 50)
    assert rules.evaluate_traffic_alerts()["opened"] == 1
    clock.shift(timedelta(days=31))
    assert rules.evaluate_daily_alerts()["opened"] == 1  # unused since
    services.key_revoke(key=key, actor=ACTOR)
    # The next traffic evaluation (every 5 minutes) closes every kind on it.
    assert rules.evaluate_traffic_alerts()["resolved"] == 2
    closed = Alert.objects.filter(key=key)
    assert all(a.resolved_at for a in closed)
    assert {a.resolution for a in closed} == {"The key no longer works (revoked)."}


def test_an_alert_of_a_revoked_key_is_never_e_mailed(make_key, clock, settings):
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": []}
    key, _ = make_key(name="Noisy")
    count(key, LAST_HOUR, 50, 50)
    assert rules.evaluate_traffic_alerts()["opened"] == 1  # nobody to mail yet
    services.key_revoke(key=key, actor=ACTOR)
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": ["ops@example.com"]}
    from keys.alerts import notify

    assert notify.notify_open_alerts([AlertKind.ERROR_SPIKE]) == 0
    assert mail.outbox == []
