"""What an alert e-mail says and who gets it: the product's name (not an internal tag) in the
subject, the sentence the alert was raised with, figures with units, absolute links built from
SITE_URL, and the recipients managed in the admin (the environment variable is the default)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from keys import services
from keys.alerts import notify, outbox, rules
from keys.alerts import services as alert_services
from keys.models import Alert, AlertKind, AlertRecipient
from keys.usage import rows as usage_rows

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
ACTOR = Actor(label="test-admin")


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def site(settings):
    settings.API_KEYS = {**settings.API_KEYS, "SITE_URL": "https://crm.example.com/"}


def spike(key) -> Alert:
    usage_rows.write_counts(
        uuid.uuid4().hex,
        {(key.pk, usage_rows.hour_index(datetime(2026, 3, 2, 9, tzinfo=UTC)), "GET /x/"): [40, 20]},
        {},
    )
    assert rules.evaluate_traffic_alerts()["opened"] == 1
    return Alert.objects.get(key=key)


def test_subject_is_the_products_and_the_body_has_units_and_absolute_links(make_key, clock, site):
    key, _ = make_key(name="Zapier")
    alert = spike(key)
    [message] = mail.outbox
    assert message.subject == f"Intellicon CRM: Error spike on API key 'Zapier' ({key.display_id})"
    assert "[crm-keys]" not in message.subject
    body = message.body
    assert alert.message in body
    assert "Measured: 50% of requests failed" in body and "Threshold: 10% of requests" in body
    assert "Opened: 2026-03-02 10:05 UTC" in body
    assert f"https://crm.example.com/admin/keys/alert/{alert.pk}/change/" in body
    assert f"https://crm.example.com/admin/keys/apikey/{key.pk}/change/" in body
    assert "48.39 | 10.0" not in body


@pytest.mark.parametrize(
    ("kind", "measured", "threshold", "measured_text", "threshold_text"),
    [
        (
            AlertKind.HIGH_VOLUME,
            10150,
            10000,
            "10,150 requests in an hour",
            "10,000 requests per hour",
        ),
        (AlertKind.ERROR_SPIKE, 48.39, 10, "48.39% of requests failed", "10% of requests"),
        (AlertKind.UNUSED, 31.5, 30, "31 days without a request", "30 days"),
        (AlertKind.ROTATION_DUE, 95.2, 90, "95 days old", "90 days"),
    ],
)
def test_every_kind_says_its_figures_with_units(
    make_key, kind, measured, threshold, measured_text, threshold_text
):
    key, _ = make_key()
    alert = Alert.objects.create(key=key, kind=kind, measured_value=measured, threshold=threshold)
    assert alert.measured_text() == measured_text
    assert alert.threshold_text() == threshold_text


def test_expiry_reminders_carry_the_product_name_and_absolute_links(make_key, site):
    key, _ = make_key(name="Short lived", expiry_policy="30d")
    notify.send_expiry_digest([key], timedelta(days=7), ["ops@example.com"])
    outbox.deliver()  # queued in the outbox; sent after commit
    [message] = mail.outbox
    assert message.subject.startswith("Intellicon CRM: ") and "[crm-keys]" not in message.subject
    assert f"https://crm.example.com/admin/keys/apikey/{key.pk}/change/" in message.body


def test_recipients_stored_in_the_admin_replace_the_environment_default(make_key, clock):
    key, _ = make_key()
    assert notify.recipients() == ["ops@example.com", "security@example.com"]  # the default
    alert_services.recipient_add(email="on-call@example.com", actor=ACTOR)
    assert notify.recipients() == ["on-call@example.com"]
    spike(key)
    assert mail.outbox[0].to == ["on-call@example.com"]
    entry = AuditEntry.objects.get(action=AuditAction.RECIPIENT_ADDED)
    assert entry.actor_label == "test-admin" and entry.after == {"email": "on-call@example.com"}

    alert_services.recipient_remove(recipient=AlertRecipient.objects.get(), actor=ACTOR)
    assert notify.recipients() == ["ops@example.com", "security@example.com"]
    assert AuditEntry.objects.filter(action=AuditAction.RECIPIENT_REMOVED).count() == 1


def test_a_recipient_is_validated_and_stored_once(db):
    alert_services.recipient_add(email=" On-Call@Example.com ", actor=ACTOR)
    with pytest.raises(alert_services.AlertServiceError, match="already"):
        alert_services.recipient_add(email="on-call@example.com", actor=ACTOR)
    with pytest.raises(alert_services.AlertServiceError, match="valid e-mail"):
        alert_services.recipient_add(email="not an address", actor=ACTOR)
    assert list(AlertRecipient.objects.values_list("email", flat=True)) == ["on-call@example.com"]


def test_a_snoozed_alert_is_not_e_mailed_until_the_snooze_ends(make_key, clock, settings):
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": []}
    key, _ = make_key()
    alert = spike(key)  # nobody to tell yet
    alert_services.alert_snooze(alert=alert, hours=24, actor=ACTOR)
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": ["ops@example.com"]}
    assert notify.notify_open_alerts([AlertKind.ERROR_SPIKE]) == 0
    clock.shift(timedelta(hours=25))
    assert notify.notify_open_alerts([AlertKind.ERROR_SPIKE]) == 1
    services.key_update(key=key, data={"name": "still here"}, actor=ACTOR)
