"""Admin > Alerts: each alert says what happened (the sentence it was raised with, figures with
units, the key), and can be acknowledged, snoozed or resolved there, each audited. Admin >
Alert recipients: who gets the e-mails, stored and audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from keys.alerts import notify
from keys.models import Alert, AlertKind, AlertRecipient
from tests.helpers import page_text

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:keys_alert_changelist")
RECIPIENTS_URL = reverse("admin:keys_alertrecipient_changelist")


@pytest.fixture
def alert(make_key: Any) -> Alert:
    key, _ = make_key(name="Zapier Connector")
    return Alert.objects.create(
        key=key,
        kind=AlertKind.ERROR_SPIKE,
        measured_value=48.39,
        threshold=10,
        message="Error spike: 48.4% of 31 requests failed (15 errors) in the hour from "
        "2026-03-02 09:00 UTC (threshold 10%).",
    )


def url(alert: Alert, action: str = "change") -> str:
    return reverse(f"admin:keys_alert_{action}", args=[alert.pk])


def test_the_list_and_the_page_say_what_happened(admin_client: Any, alert: Alert) -> None:
    listing = page_text(admin_client.get(LIST_URL).content.decode())
    assert "Error spike: 48.4% of 31 requests failed" in listing
    assert "48.39% of requests failed" in listing and "10% of requests" in listing
    assert "Zapier Connector" in listing and alert.key.display_id in listing
    assert "48.39 | 10.0" not in listing
    page = page_text(admin_client.get(url(alert)).content.decode())
    assert "Error spike: 48.4% of 31 requests failed" in page
    assert "Measured 48.39% of requests failed" in page and "Threshold 10% of requests" in page
    assert "Open" in page
    for button in ("Acknowledge", "Snooze", "Resolve"):
        assert button in page


def test_acknowledge_snooze_and_resolve_are_audited(admin_client: Any, alert: Alert) -> None:
    response = admin_client.post(url(alert, "acknowledge"))
    assert response.status_code == 302 and response["Location"] == url(alert)
    alert.refresh_from_db()
    assert alert.acknowledged_at is not None and alert.acknowledged_by == "admin"
    assert "Acknowledged by admin" in page_text(admin_client.get(url(alert)).content.decode())

    assert admin_client.post(url(alert, "snooze"), {"hours": "24"}).status_code == 302
    alert.refresh_from_db()
    assert timedelta(hours=23) < alert.snoozed_until - timezone.now() <= timedelta(hours=24)

    assert (
        admin_client.post(url(alert, "resolve"), {"note": "integration fixed"}).status_code == 302
    )
    alert.refresh_from_db()
    assert alert.resolved_at is not None
    assert alert.resolution == "Resolved by admin: integration fixed"
    actions = list(
        AuditEntry.objects.filter(key_id=alert.key_id)
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions[-3:] == [
        AuditAction.ALERT_ACKNOWLEDGED,
        AuditAction.ALERT_SNOOZED,
        AuditAction.ALERT_RESOLVED,
    ]
    assert AuditEntry.objects.filter(action=AuditAction.ALERT_RESOLVED).get().actor_label == "admin"
    # A resolved alert cannot be handled again; the page says so instead of a 500.
    again = admin_client.post(url(alert, "acknowledge"), follow=True)
    assert "already resolved" in page_text(again.content.decode())


def test_a_bad_snooze_is_refused(admin_client: Any, alert: Alert) -> None:
    response = admin_client.post(url(alert, "snooze"), {"hours": "99999"}, follow=True)
    assert "Snooze for 1 hour, 24 hours or 7 days" in page_text(response.content.decode())
    alert.refresh_from_db()
    assert alert.snoozed_until is None


def test_handling_alerts_needs_its_own_permission(staff_client: Any, alert: Alert) -> None:
    viewer = staff_client("keys.view_alert")
    assert viewer.get(url(alert)).status_code == 200
    assert "Acknowledge" not in page_text(viewer.get(url(alert)).content.decode())
    for action in ("acknowledge", "snooze", "resolve"):
        assert viewer.post(url(alert, action), {"hours": "24"}).status_code == 403
    handler = staff_client("keys.view_alert", "keys.handle_alert")
    assert handler.post(url(alert, "acknowledge")).status_code == 302
    assert handler.get(url(alert, "acknowledge")).status_code == 405  # GET changes nothing


def test_bulk_acknowledge_and_resolve(admin_client: Any, alert: Alert, make_key: Any) -> None:
    key, _ = make_key(name="Other")
    other = Alert.objects.create(key=key, kind=AlertKind.UNUSED, measured_value=40, threshold=30)
    ids = [alert.pk, other.pk]
    admin_client.post(LIST_URL, {"action": "acknowledge_selected", "_selected_action": ids})
    assert Alert.objects.filter(acknowledged_at__isnull=False).count() == 2
    admin_client.post(LIST_URL, {"action": "resolve_selected", "_selected_action": ids})
    assert Alert.objects.filter(resolved_at__isnull=False).count() == 2
    assert AuditEntry.objects.filter(action=AuditAction.ALERT_RESOLVED).count() == 2


def test_bulk_acknowledge_says_why_nothing_was_done(
    admin_client: Any, alert: Alert, make_key: Any
) -> None:
    key, _ = make_key(name="Other")
    other = Alert.objects.create(key=key, kind=AlertKind.UNUSED, measured_value=40, threshold=30)
    admin_client.post(url(alert, "acknowledge"))
    response = admin_client.post(
        LIST_URL,
        {"action": "acknowledge_selected", "_selected_action": [alert.pk, other.pk]},
        follow=True,
    )
    text = page_text(response.content.decode())
    assert (
        "1 alert acknowledged. 1 of the selected was already resolved or already acknowledged."
        in text
    )
    other.refresh_from_db()
    assert other.acknowledged_at is not None


def test_open_alerts_filter_hides_snoozed_ones(admin_client: Any, alert: Alert) -> None:
    admin_client.post(url(alert, "snooze"), {"hours": "1"})
    admin_client.get(url(alert))  # shows (and so consumes) the "snoozed" message
    html = page_text(admin_client.get(LIST_URL, {"state": "open"}).content.decode())
    assert "Zapier Connector" not in html
    html = page_text(admin_client.get(LIST_URL, {"state": "snoozed"}).content.decode())
    assert "Zapier Connector" in html


def test_recipients_are_managed_in_the_admin(admin_client: Any, settings: Any) -> None:
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": ["env@example.com"]}
    page = page_text(admin_client.get(RECIPIENTS_URL).content.decode())
    assert "env@example.com" in page and "API_KEY_ALERT_RECIPIENTS" in page
    add = reverse("admin:keys_alertrecipient_add")
    response = admin_client.post(add, {"email": "on-call@example.com"})
    assert response.status_code == 302
    assert notify.recipients() == ["on-call@example.com"]
    assert AuditEntry.objects.get(action=AuditAction.RECIPIENT_ADDED).actor_label == "admin"
    bad = admin_client.post(add, {"email": "on-call@example.com"})
    assert bad.status_code == 200 and "already" in bad.content.decode()
    recipient = AlertRecipient.objects.get()
    delete = reverse("admin:keys_alertrecipient_delete", args=[recipient.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302
    assert notify.recipients() == ["env@example.com"]
    assert AuditEntry.objects.get(action=AuditAction.RECIPIENT_REMOVED).actor_label == "admin"
