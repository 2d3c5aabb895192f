"""The two alerts about who calls a key: "old key still in use" near the end of a rotation's
grace period, and "permissions unused for 30 days". Each opens once per episode, is audited,
e-mailed once, and clears."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.core.management import call_command

from audit.models import AuditAction, AuditEntry
from keys import services
from keys.alerts import rules
from keys.models import Alert, AlertKind
from keys.usage import flush
from tests.helpers import ACTOR, bearer, generate

pytestmark = pytest.mark.django_db

R = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


def alerts(key, kind) -> list[Alert]:
    return list(Alert.objects.filter(key=key, kind=kind).order_by("opened_at"))


def raised(key) -> int:
    return AuditEntry.objects.filter(key_id=key.pk, action=AuditAction.ALERT_RAISED).count()


@pytest.fixture
def rotated_1h(api, backend):
    """A key rotated at R with a one-hour grace; at R + 10 min a client still calls the old key."""
    with at(R - timedelta(days=1)):
        old = generate("Zapier connector")
    with at(R):
        rotated = services.key_rotate(key=old.key, grace=timedelta(hours=1), actor=ACTOR)
    with at(R + timedelta(minutes=10)):
        response = api.get(
            "/api/v1/contacts/",
            REMOTE_ADDR="203.0.113.7",
            HTTP_USER_AGENT="Zapier/1.0",
            **bearer(old.full_key),
        )
        assert response.status_code == 200
        flush.flush()
    return rotated


def test_old_key_still_in_use_is_raised_once_in_the_last_tenth(rotated_1h):
    old = rotated_1h.old_key
    with at(R + timedelta(minutes=50)):  # 10 minutes left: not yet the last tenth (6 minutes)
        rules.evaluate_traffic_alerts()
    assert alerts(old, AlertKind.OLD_KEY_IN_USE) == []
    with at(R + timedelta(minutes=55)):
        assert rules.evaluate_traffic_alerts()["opened"] == 1
    [alert] = alerts(old, AlertKind.OLD_KEY_IN_USE)
    assert "automatically revoked at 2026-03-02 09:00 UTC (in 5 min)" in alert.message
    assert "last used at 08:10 UTC, by 203.0.113.7 (Zapier/1.0)" in alert.message
    assert rotated_1h.key.display_id in alert.message
    assert raised(old) == 1
    assert len(mail.outbox) == 1
    assert "Old key still in use" in mail.outbox[0].subject
    assert "203.0.113.7 (Zapier/1.0)" in mail.outbox[0].body
    assert "Measured:" not in mail.outbox[0].body  # the sentence says it all
    assert "See which clients still call the old key, and revoke it" in mail.outbox[0].body
    with at(R + timedelta(minutes=58)):
        assert rules.evaluate_traffic_alerts()["opened"] == 0  # once per episode
    assert len(mail.outbox) == 1 and raised(old) == 1
    with at(R + timedelta(minutes=61)):  # the grace period is over: the episode ends
        assert rules.evaluate_traffic_alerts()["resolved"] == 1
    assert alerts(old, AlertKind.OLD_KEY_IN_USE)[0].resolved_at is not None


def test_no_alert_when_the_old_key_was_not_used_recently(api, backend):
    with at(R - timedelta(days=1)):
        old = generate("Quiet")
    with at(R):
        services.key_rotate(key=old.key, grace=timedelta(hours=24), actor=ACTOR)
    with at(R + timedelta(hours=1)):
        assert api.get("/api/v1/contacts/", **bearer(old.full_key)).status_code == 200
        flush.flush()
    with at(R + timedelta(hours=23, minutes=30)):  # last hour of the grace, last use 22h ago
        rules.evaluate_traffic_alerts()
    assert alerts(old.key, AlertKind.OLD_KEY_IN_USE) == []


def test_muted_keys_get_no_cutover_alert(api, backend):
    """Muted before the rotation: a key in its grace period is read-only (its replacement is
    the one to edit), and the rotation carries the setting to both keys."""
    with at(R - timedelta(days=1)):
        old = generate("Zapier connector")
        services.key_update(key=old.key, data={"alerts_muted": True}, actor=ACTOR)
    with at(R):
        rotated = services.key_rotate(key=old.key, grace=timedelta(hours=1), actor=ACTOR)
    with at(R + timedelta(minutes=10)):
        assert api.get("/api/v1/contacts/", **bearer(old.full_key)).status_code == 200
        flush.flush()
    with at(R + timedelta(minutes=55)):
        rules.evaluate_traffic_alerts()
    assert rotated.old_key.alerts_muted and rotated.key.alerts_muted
    assert alerts(rotated.old_key, AlertKind.OLD_KEY_IN_USE) == []


T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def partly_used(api, backend):
    with at(T0):
        generated = generate("BI tool", scopes={"contacts": ["view", "export"], "leads": ["view"]})
        young = generate("Self-check only", scopes={"contacts": ["view", "export"]})
    with at(T0 + timedelta(days=10)):
        assert api.get("/api/v1/contacts/", **bearer(generated.full_key)).status_code == 200
        assert api.get("/api/v1/key/", **bearer(young.full_key)).status_code == 200
        flush.flush()
    return generated.key, young.key


def test_permissions_unused_for_30_days_is_raised_once_and_clears(partly_used):
    key, _self_check = partly_used
    with at(T0 + timedelta(days=25)):
        rules.evaluate_daily_alerts()
    assert alerts(key, AlertKind.UNUSED_PERMISSIONS) == []  # the key is not 30 days old yet
    with at(T0 + timedelta(days=31)):
        rules.evaluate_daily_alerts()
        rules.evaluate_daily_alerts()
    [alert] = alerts(key, AlertKind.UNUSED_PERMISSIONS)
    assert alert.message.startswith(
        "Permissions unused for 30 days: contacts:export, leads:view. Remove them on the key page"
    )
    assert raised(key) == 1
    assert [m.subject for m in mail.outbox if "'BI tool'" in m.subject] == [
        f"Intellicon CRM: Permissions unused on API key 'BI tool' ({key.display_id})"
    ]
    with at(T0 + timedelta(days=32)):
        call_command("apikey", "scopes", key.public_id, "--drop-unused", stdout=io.StringIO())
    with at(T0 + timedelta(days=33)):
        rules.evaluate_daily_alerts()
    assert alerts(key, AlertKind.UNUSED_PERMISSIONS)[0].resolved_at is not None


def test_a_key_that_used_no_permission_is_told_to_revoke(partly_used):
    """It only ever asked about itself (GET /api/v1/key/ needs no permission)."""
    _key, self_check = partly_used
    with at(T0 + timedelta(days=31)):
        rules.evaluate_daily_alerts()
    [alert] = alerts(self_check, AlertKind.UNUSED_PERMISSIONS)
    assert "contacts:view, contacts:export" in alert.message
    assert "if the integration is gone, revoke the key" in alert.message
