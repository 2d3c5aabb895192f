"""The audit log in the admin: readable and filterable, never writable (not even by superusers)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from keys import services

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:audit_auditentry_changelist")


def test_list_shows_time_actor_action_key_ip(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="BI Tool Access")
    response = admin_client.get(LIST_URL)
    html = response.content.decode()
    assert response.status_code == 200
    assert "BI Tool Access" in html and key.display_id in html
    assert "test-admin" in html and "127.0.0.1" in html and "Generated" in html
    for title in ("By action", "By actor", "By created at"):
        assert title.lower() in html.lower()


def test_filters_by_key_action_actor_and_search(
    admin_client: Any, make_key: Any, actor: Any
) -> None:
    key, _ = make_key(name="Keep me")
    other, _ = make_key(name="Other key")
    services.key_revoke(key=other, actor=actor)
    by_id = admin_client.get(LIST_URL, {"key_id": key.pk}).content.decode()
    assert "Keep me" in by_id and "Other key" not in by_id
    by_public = admin_client.get(LIST_URL, {"key_public_id": key.public_id}).content.decode()
    assert "Keep me" in by_public and "Other key" not in by_public
    revoked = admin_client.get(LIST_URL, {"action__exact": "revoked"}).content.decode()
    assert "Other key" in revoked and "Keep me" not in revoked
    assert "test-admin" in admin_client.get(LIST_URL, {"actor": "test-admin"}).content.decode()
    for term in ("keep", key.public_id, key.display_id):
        html = admin_client.get(LIST_URL, {"q": term}).content.decode()
        assert "Keep me" in html and "Other key" not in html, term


def test_detail_shows_before_and_after(admin_client: Any, make_key: Any, actor: Any) -> None:
    key, _ = make_key(scopes={"contacts": ["view"]})
    services.key_update_scopes(key=key, scopes={"leads": ["view", "create"]}, actor=actor)
    entry = AuditEntry.objects.get(action=AuditAction.SCOPES_CHANGED)
    response = admin_client.get(reverse("admin:audit_auditentry_change", args=[entry.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="audit-diff"' in html
    assert "contacts" in html and "leads" in html
    assert 'name="_save"' not in html  # read-only: no save button


def test_nobody_can_add_change_or_delete_entries(admin_client: Any, make_key: Any) -> None:
    make_key()
    entry = AuditEntry.objects.get()
    before = (entry.entry_hash, entry.message)
    assert admin_client.get(reverse("admin:audit_auditentry_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:audit_auditentry_add"), {"message": "x"}).status_code
        == 403
    )
    change = reverse("admin:audit_auditentry_change", args=[entry.pk])
    assert admin_client.post(change, {"message": "forged"}).status_code == 403
    delete = reverse("admin:audit_auditentry_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    admin_client.post(
        LIST_URL, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    )
    html = admin_client.get(LIST_URL).content.decode()
    assert "Add audit log entry" not in html and "delete_selected" not in html
    entry = AuditEntry.objects.get()
    assert (entry.entry_hash, entry.message) == before


def test_audit_log_needs_its_view_permission(staff_client: Any, make_key: Any) -> None:
    make_key()
    assert staff_client().get(LIST_URL).status_code == 403
    assert staff_client("audit.view_auditentry").get(LIST_URL).status_code == 200


@pytest.mark.parametrize("name", ["contact", "lead", "opportunity"])
def test_crm_models_are_registered(admin_client: Any, name: str) -> None:
    assert admin_client.get(reverse(f"admin:crm_{name}_changelist")).status_code == 200
    assert admin_client.get(reverse(f"admin:crm_{name}_add")).status_code == 200


def test_alerts_are_listed_read_only(admin_client: Any, make_key: Any) -> None:
    from keys.models import Alert, AlertKind

    key, _ = make_key(name="Noisy")
    Alert.objects.create(key=key, kind=AlertKind.HIGH_VOLUME, measured_value=20000, threshold=10000)
    html = admin_client.get(reverse("admin:keys_alert_changelist")).content.decode()
    assert "High volume" in html and "Noisy" in html
    assert admin_client.get(reverse("admin:keys_alert_add")).status_code == 403
