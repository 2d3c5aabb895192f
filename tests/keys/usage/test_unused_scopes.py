"""Unused permissions: found from the hourly rows, shown by `apikey show` and the key page,
dropped through the CLI or the admin (audited as a scope change), then refused with 403."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditAction, AuditEntry
from keys import services
from keys.api.permissions import endpoint_scopes
from keys.models import APIKey
from keys.usage import flush, insights
from tests.helpers import ACTOR, bearer, generate, page_text

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SCOPES = {"contacts": ["view", "create"], "leads": ["view", "edit"]}


def at(moment: datetime) -> time_machine.travel:
    return time_machine.travel(moment, tick=False)


def show(key: APIKey) -> dict:
    out = io.StringIO()
    call_command("apikey", "show", str(key.pk), "--json", stdout=out)
    return json.loads(out.getvalue())


def scopes_cli(key: APIKey, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", "scopes", key.public_id, *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


@pytest.fixture
def used_key(api, backend):
    """A key created at T0 whose integration, at T0 + 10 days, listed contacts and read a lead
    (a 404 still uses leads:view); contacts:create and leads:edit were never used."""
    with at(T0):
        generated = generate("Zapier", scopes=SCOPES)
    with at(T0 + timedelta(days=10)):
        assert api.get("/api/v1/contacts/", **bearer(generated.full_key)).status_code == 200
        assert api.get("/api/v1/leads/424242/", **bearer(generated.full_key)).status_code == 404
        assert api.get("/api/v1/key/", **bearer(generated.full_key)).status_code == 200
        flush.flush()
    return generated.key, generated.full_key


def test_every_endpoint_maps_to_the_permission_a_request_needs():
    needs = endpoint_scopes()
    assert needs["GET /api/v1/contacts/{id}/"] == "contacts:view"
    assert needs["HEAD /api/v1/leads/"] == "leads:view"
    assert needs["POST /api/v1/opportunities/"] == "opportunities:create"
    assert needs["PATCH /api/v1/leads/{id}/"] == "leads:edit"
    assert needs["DELETE /api/v1/contacts/{id}/"] == "contacts:delete"
    assert needs["GET /api/v1/opportunities/export/"] == "opportunities:export"
    assert "GET /api/v1/key/" not in needs  # any valid key, no permission
    assert set(needs.values()) == {
        f"{m}:{a}"
        for m in SCOPES | {"opportunities": []}
        for a in ("view", "create", "edit", "delete", "export")
    }


def test_unused_scopes_found_dropped_then_refused_with_403(api, used_key):
    key, full = used_key
    with at(T0 + timedelta(days=35)):
        data = show(key)
        assert data["unused_scopes"] == ["contacts:create", "leads:edit"]
        assert data["unused_scopes_window_days"] == 30
        assert data["unused_scopes_too_new"] is False
        out, err = scopes_cli(key, "--drop-unused")
        assert out == f"{key.display_id}: Contacts: View · Leads: View"
        assert "contacts:create, leads:edit" in err
        key.refresh_from_db()
        assert key.scopes == {"contacts": ["view"], "leads": ["view"]}
        entry = AuditEntry.objects.filter(key_id=key.pk).order_by("-seq").first()
        assert entry.action == AuditAction.SCOPES_CHANGED
        assert entry.before == {"scopes": SCOPES}
        response = api.post(
            "/api/v1/contacts/",
            {"first_name": "A", "last_name": "B"},
            format="json",
            **bearer(full),
        )
        assert response.status_code == 403
        assert "contacts:create" in response.json()["detail"]
        assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 200
        assert show(key)["unused_scopes"] == []
        with pytest.raises(CommandError, match="Every permission of this key was used"):
            scopes_cli(key, "--drop-unused")


def test_too_young_to_judge(used_key):
    key, _ = used_key
    with at(T0 + timedelta(days=20)):
        data = show(key)  # as on the key page: too new to tell, nothing marked unused
        assert data["unused_scopes"] == [] and data["unused_scopes_too_new"] is True
        with pytest.raises(CommandError, match="older than 30 days"):
            scopes_cli(key, "--drop-unused")
    assert APIKey.objects.get(pk=key.pk).scopes == SCOPES


def test_usage_older_than_the_window_does_not_count(used_key):
    key, _ = used_key
    with at(T0 + timedelta(days=41)):  # the requests of day 10 are 31 days old
        assert show(key)["unused_scopes"] == [
            "contacts:view",
            "contacts:create",
            "leads:view",
            "leads:edit",
        ]
        with pytest.raises(CommandError, match="revoke the key instead"):
            scopes_cli(key, "--drop-unused")


def test_a_rotated_key_is_judged_with_the_keys_it_replaced(api, used_key):
    key, _ = used_key
    with at(T0 + timedelta(days=25)):
        new = services.key_rotate(key=key, grace=timedelta(hours=1), actor=ACTOR)
    with at(T0 + timedelta(days=26)):
        assert api.get("/api/v1/contacts/", **bearer(new.full_key)).status_code == 200
        flush.flush()
    with at(T0 + timedelta(days=36)):  # the new key is 11 days old; its lineage 36
        review = insights.scope_review(new.key)
        assert (review.old_enough, review.keys) == (True, 2)
        assert review.unused == ["contacts:create", "leads:edit"]  # leads:view: the old key
        scopes_cli(new.key, "--drop-unused")
    assert APIKey.objects.get(pk=new.key.pk).scopes == {"contacts": ["view"], "leads": ["view"]}


def test_the_key_page_marks_permissions_and_removes_the_unused_ones(admin_client, api, used_key):
    key, full = used_key
    page_url = f"/admin/keys/apikey/{key.pk}/change/"
    remove_url = f"/admin/keys/apikey/{key.pk}/remove-unused/"
    with at(T0 + timedelta(days=35)):
        html = admin_client.get(page_url).content.decode()
        assert html.count('class="scope-usage scope-usage--unused"') == 2
        assert html.count('class="scope-usage scope-usage--used"') == 2
        # What "unused" means, on the mark itself: the window.
        text = page_text(html)
        assert text.count("not used in the last 30 days") >= 2
        assert " unused " not in f" {text} ".replace("unused permissions", "")
        assert f'href="{remove_url}"' in html
        confirm = admin_client.get(remove_url).content.decode()
        assert "<code>contacts:create</code>" in confirm and "<code>leads:edit</code>" in confirm
        assert "The key keeps: Contacts: View · Leads: View." in confirm
        # A stale confirmation (the admin saw a permission that is now used) changes nothing.
        stale = admin_client.post(remove_url, {"scope": ["contacts:view"]})
        assert "changed since this page was shown" in stale.content.decode()
        assert APIKey.objects.get(pk=key.pk).scopes == SCOPES
        # Confirm only one of the two: only that one goes.
        response = admin_client.post(remove_url, {"scope": ["leads:edit"]})
        assert response.status_code == 302 and response["Location"] == page_url
        assert APIKey.objects.get(pk=key.pk).scopes == {
            "contacts": ["view", "create"],
            "leads": ["view"],
        }
        assert api.patch("/api/v1/leads/1/", {}, format="json", **bearer(full)).status_code == 403
        messages = admin_client.get(page_url).content.decode()
        assert "Removed 1 unused permission" in messages
        entry = AuditEntry.objects.filter(key_id=key.pk).order_by("-seq").first()
        assert (entry.action, entry.actor_label) == (AuditAction.SCOPES_CHANGED, "admin")


def test_the_key_page_says_when_it_is_too_early(admin_client, used_key):
    """A key younger than the window: no permission is marked unused (it means nothing yet);
    the page says it is too new to tell, and from when it can."""
    key, _ = used_key
    with at(T0 + timedelta(days=20)):
        html = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
        assert "scope-usage--unused" not in html
        assert html.count('class="scope-usage scope-usage--used"') == 2
        assert "remove-unused/" not in html
        text = page_text(html)
        assert "Too new to tell which permissions go unused" in text
        assert "created on 2026-01-05" in text and "from 2026-02-04" in text
        confirm = admin_client.post(
            f"/admin/keys/apikey/{key.pk}/remove-unused/", {"scope": ["contacts:create"]}
        )
        assert "older than 30 days" in confirm.content.decode()
    assert APIKey.objects.get(pk=key.pk).scopes == SCOPES


def test_removing_needs_the_change_permission(staff_client, used_key):
    key, _ = used_key
    client = staff_client("keys.view_apikey")
    with at(T0 + timedelta(days=35)):
        assert (
            "remove-unused/"
            not in client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
        )
        response = client.post(
            f"/admin/keys/apikey/{key.pk}/remove-unused/", {"scope": ["contacts:create"]}
        )
        assert response.status_code == 403
    assert APIKey.objects.get(pk=key.pk).scopes == SCOPES
