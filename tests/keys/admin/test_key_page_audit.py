"""The key page's audit trail shows what changed (before -> after), and History opens the key's
audit trail (generated, edited, rotated, revoked), not Django's own LogEntry list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse

from keys import services
from tests.helpers import ACTOR, page_text

pytestmark = pytest.mark.django_db


def trail(html: str) -> str:
    return page_text(html.split('id="key-audit-heading"')[1].split("</section>")[0])


def test_edits_and_scope_changes_show_before_and_after(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Zapier", scopes={"contacts": ["view"]})
    services.key_update(
        key=key,
        data={"name": "Zapier Connector", "alert_unused_days": 10, "scopes": {"leads": ["view"]}},
        actor=ACTOR,
    )
    text = trail(
        admin_client.get(reverse("admin:keys_apikey_change", args=[key.pk])).content.decode()
    )
    assert "Name: Zapier → Zapier Connector" in text
    assert "Unused key: days without a request: — → 10" in text
    assert "Permissions: Contacts: View → Leads: View" in text


def test_history_is_the_keys_audit_trail(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Zapier")
    services.key_rotate(key=key, grace=timedelta(hours=1), actor=ACTOR)
    html = admin_client.get(reverse("admin:keys_apikey_change", args=[key.pk])).content.decode()
    audit_url = reverse("admin:audit_auditentry_changelist") + f"?key_id={key.pk}"
    assert f'<a href="{audit_url}" class="historylink">History</a>' in html
    # The old History address leads there too.
    response = admin_client.get(reverse("admin:keys_apikey_history", args=[key.pk]))
    assert response.status_code == 302 and response["Location"] == audit_url
    listing = page_text(admin_client.get(audit_url).content.decode())
    assert "Generated" in listing and "Rotated" in listing


def test_no_history_link_without_the_audit_permission(staff_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    html = (
        staff_client("keys.view_apikey")
        .get(reverse("admin:keys_apikey_change", args=[key.pk]))
        .content.decode()
    )
    assert "historylink" not in html
