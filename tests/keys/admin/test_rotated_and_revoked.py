"""Rotated and revoked keys in the admin: what the list and the key page say about them, and
the old key of a rotation, which is read-only except "Revoke now"."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from keys import services
from keys.models import APIKey
from tests.helpers import ACTOR

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:keys_apikey_changelist")


def change_url(key: APIKey) -> str:
    return reverse("admin:keys_apikey_change", args=[key.pk])


def row_of(html: str, key: APIKey) -> str:
    """The list row of ``key`` (rows are <tr> elements holding the key's display id)."""
    rows = [row for row in html.split("<tr") if f'<code class="key-id">{key.display_id}<' in row]
    assert len(rows) == 1, key.display_id
    return rows[0]


def test_both_keys_of_a_rotation_are_badged_in_the_list(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Zapier Connector")
    rotated = services.key_rotate(key=key, grace=timedelta(hours=24), actor=ACTOR)
    html = admin_client.get(LIST_URL).content.decode()
    old_row, new_row = row_of(html, rotated.old_key), row_of(html, rotated.key)
    assert f"new key {rotated.key.display_id}" in old_row
    assert "Old key · grace period" in old_row and "remains active until" in old_row
    assert "New key</span>" in new_row and f"old key {rotated.old_key.display_id}" in new_row
    assert "Old key" not in new_row


def test_a_revoked_key_shows_no_expiry(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Retired", expiry_policy="90d")
    services.key_revoke(key=key, actor=ACTOR)
    row = row_of(admin_client.get(LIST_URL).content.decode(), key)
    assert "in 2 months" not in row and "in 3 months" not in row
    assert "revoked" in row
    page = admin_client.get(change_url(key)).content.decode()
    assert "in 2 months" not in page and "in 3 months" not in page


def test_rejected_calls_are_not_shown_as_use(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Still called")
    used = timezone.now() - timedelta(days=3)
    APIKey.objects.filter(pk=key.pk).update(last_used_at=used)
    services.key_revoke(key=key, actor=ACTOR)
    # The integration keeps calling with it: every call is a 401, counted for the key.
    APIKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    row = row_of(admin_client.get(LIST_URL).content.decode(), key)
    assert "last call rejected: key revoked" in row
    page = admin_client.get(change_url(key)).content.decode()
    assert "Last rejected call" in page
    field = page.split("field-last_used_display")[1].split("</div>")[0]
    assert "just now" not in field


def test_old_key_in_grace_is_read_only_except_revoke_now(
    admin_client: Any, make_key: Any, api: Any
) -> None:
    key, _ = make_key(name="Zapier Connector", scopes={"contacts": ["view"]})
    rotated = services.key_rotate(key=key, grace=timedelta(hours=24), actor=ACTOR)
    old = rotated.old_key
    html = admin_client.get(change_url(old)).content.decode()
    form = html.split('id="apikey_form"')[1].split("key-panels")[0]
    assert 'type="checkbox"' not in form
    assert 'name="_save"' not in html
    assert "Revoke now" in html
    assert reverse("admin:keys_apikey_revoke", args=[old.pk]) in html
    assert reverse("admin:keys_apikey_rotate", args=[old.pk]) not in html
    assert rotated.key.display_id in html  # where to edit instead
    response = admin_client.post(
        change_url(old), {"name": "x", "scopes__leads__view": "on", "description": ""}
    )
    assert response.status_code == 403
    old.refresh_from_db()
    assert old.scopes == {"contacts": ["view"]} and old.name == "Zapier Connector"
    # Revoke now still works.
    assert admin_client.post(reverse("admin:keys_apikey_revoke", args=[old.pk])).status_code == 302
    old.refresh_from_db()
    assert old.revoked_at is not None


def test_services_and_cli_refuse_to_edit_the_old_key(make_key: Any) -> None:
    key, _ = make_key(scopes={"contacts": ["view"]})
    rotated = services.key_rotate(key=key, grace=timedelta(hours=24), actor=ACTOR)
    with pytest.raises(services.KeyStateError, match="old key of a rotation"):
        services.key_update(key=rotated.old_key, data={"name": "x"}, actor=ACTOR)
    with pytest.raises(CommandError, match=rotated.key.public_id):
        call_command(
            "apikey",
            "scopes",
            str(rotated.old_key.pk),
            "--scope",
            "leads:view",
            stdout=io.StringIO(),
        )
    # The new key is the one to edit.
    services.key_update(key=rotated.key, data={"scopes": {"leads": ["view"]}}, actor=ACTOR)
