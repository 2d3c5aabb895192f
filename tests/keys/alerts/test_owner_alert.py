"""Keys do not outlive the people who answer for them: the daily job raises an "owner
deactivated" alert on each active key of an owner who is no longer active (an episode like the
other alerts: once, e-mailed once, resolved when the key has an active owner again)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from keys import services
from keys.models import Alert, AlertKind
from tests.helpers import person

pytestmark = pytest.mark.django_db

ADMIN = Actor(label="admin")


def daily() -> dict[str, Any]:
    out = io.StringIO()
    call_command("runjob", "daily_reminders", stdout=out)
    return json.loads(out.getvalue().split(": ", 1)[1])["alerts"]


def owner_alerts(**filters: Any) -> list[Alert]:
    return list(Alert.objects.filter(kind=AlertKind.OWNER_DEACTIVATED, **filters).order_by("pk"))


def test_owner_deactivated_alert_once_per_active_key_until_reassigned() -> None:
    dana = person("dana")
    kept = [
        services.key_generate(
            name=f"Dana {i}", scopes={"contacts": ["view"]}, owner=dana, actor=ADMIN
        ).key
        for i in range(2)
    ]
    revoked = services.key_generate(
        name="Dana old", scopes={"contacts": ["view"]}, owner=dana, actor=ADMIN
    ).key
    services.key_revoke(key=revoked, actor=ADMIN)
    services.key_generate(name="Nobody's", scopes={"contacts": ["view"]}, actor=ADMIN)
    assert daily()["opened"] == 0

    dana.is_active = False
    dana.save()
    assert daily()["opened"] == 2
    alerts = owner_alerts()
    assert [a.key for a in alerts] == kept
    assert alerts[0].message == (
        "Owner deactivated: dana, who answers for this key, is no longer an active user. "
        "Give the key an active owner, or revoke it."
    )
    raised = AuditEntry.objects.filter(action=AuditAction.ALERT_RAISED, key_id=kept[0].pk).get()
    assert raised.actor_label == "system:daily_reminders"
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == [
        f"Intellicon CRM: Owner deactivated on API key 'Dana {i}' ({k.display_id})"
        for i, k in enumerate(kept)
    ]
    assert "Give the key an active owner" in mail.outbox[0].body
    assert "Threshold" not in mail.outbox[0].body

    # Not again while it lasts, muted or not: muting silences usage alerts, not this.
    services.key_update(key=kept[0], data={"alerts_muted": True}, actor=ADMIN)
    assert daily() == {"opened": 0, "resolved": 0, "notified": 0}

    # A new owner (active) clears the episode of that key; reactivating dana clears the other.
    services.key_update(key=kept[0], data={"owner": person("erin")}, actor=ADMIN)
    assert daily()["resolved"] == 1
    dana.is_active = True
    dana.save()
    assert daily()["resolved"] == 1
    assert owner_alerts(resolved_at__isnull=True) == []


def test_deactivated_owner_filter_lists_their_keys(admin_client: Any) -> None:
    dana = person("dana")
    services.key_generate(name="Orphan", scopes={"contacts": ["view"]}, actor=Actor.cli())
    services.key_generate(name="Dana's", scopes={"contacts": ["view"]}, owner=dana, actor=ADMIN)
    dana.is_active = False
    dana.save()
    html = admin_client.get("/admin/keys/apikey/?owner=deactivated").content.decode()
    assert "Dana&#x27;s" in html and "Orphan" not in html
    html = admin_client.get("/admin/keys/apikey/?owner=none").content.decode()
    assert "Orphan" in html and "Dana&#x27;s" not in html
