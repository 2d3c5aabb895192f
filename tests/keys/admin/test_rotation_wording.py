"""The admin's rotation wording matches the manual ("Key Rotation"), sentence by sentence: the
Rotate button, the confirmation, the show-once page after rotation, the old key's page during
its grace period, the rotation field, the cutover panel and the list badges use its terms
(new key value, old key, grace period, remains active, automatically revoked)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from keys import services
from keys.models import APIKey
from tests.helpers import ACTOR, form_nonce, page_text

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:keys_apikey_changelist")
# The manual's sentences on rotation, as the admin must say them.
MANUAL = [
    "A new key value is generated with the same name, description, and permissions.",
    "The old key remains active for a grace period",
    "Update the external system with the new key value.",
    "After the grace period, the old key is automatically revoked.",
    "The grace period allows you to update external systems without downtime.",
    "Both the old and new key work during this window.",
]
# Wording the manual does not use for the same things.
NOT_THE_MANUAL = [
    "Replaced by",
    "Replaces ",
    "works until",
    "keeps working",
    "stops working",
    "replacement",
]


def change_url(key: APIKey) -> str:
    return reverse("admin:keys_apikey_change", args=[key.pk])


def row_of(html: str, key: APIKey) -> str:
    rows = [row for row in html.split("<tr") if f'<code class="key-id">{key.display_id}<' in row]
    assert len(rows) == 1, key.display_id
    return page_text("<tr" + rows[0])


def assert_no_other_terms(text: str) -> None:
    for term in NOT_THE_MANUAL:
        assert term not in text, term


def test_rotate_confirmation_and_show_once_page_use_the_manual(
    admin_client: Any, make_key: Any
) -> None:
    key, _ = make_key(name="Zapier Connector")
    key_page = page_text(admin_client.get(change_url(key)).content.decode())
    assert "Rotate" in key_page
    url = reverse("admin:keys_apikey_rotate", args=[key.pk])
    confirm = admin_client.get(url).content.decode()
    text = page_text(confirm)
    for sentence in MANUAL:
        assert sentence in text, sentence
    assert 'value="Rotate"' in confirm  # the manual's "Click Rotate"
    assert "How long the old key remains active" in text
    assert_no_other_terms(text)
    shown = page_text(
        admin_client.post(url, {"form_nonce": form_nonce(confirm), "grace": "24h"}).content.decode()
    )
    assert "New key value for “Zapier Connector”" in shown
    for sentence in MANUAL[:4] + MANUAL[5:]:
        assert sentence.rstrip(".") in shown, sentence
    assert_no_other_terms(shown)


def test_old_key_page_list_and_new_key_page_during_and_after_grace(
    admin_client: Any, make_key: Any
) -> None:
    key, _ = make_key(name="Zapier Connector")
    rotated = services.key_rotate(key=key, grace=timedelta(hours=24), actor=ACTOR)
    old, new = rotated.old_key, rotated.key

    old_page = page_text(admin_client.get(change_url(old)).content.decode())
    assert f"This is the old key of a rotation: the new key value is {new.display_id}" in old_page
    assert "It remains active for the grace period, until" in old_page
    assert "Update the external system with the new key value." in old_page
    assert "After the grace period, it is automatically revoked." in old_page
    assert_no_other_terms(old_page)
    new_page = page_text(admin_client.get(change_url(new)).content.decode())
    assert f"The old key {old.display_id} remains active for the grace period, until" in new_page
    assert_no_other_terms(new_page)

    html = admin_client.get(LIST_URL).content.decode()
    old_row, new_row = row_of(html, old), row_of(html, new)
    assert "Old key · grace period" in old_row and f"new key {new.display_id}" in old_row
    assert "remains active until" in old_row
    assert f"New key old key {old.display_id}" in new_row
    for row in (old_row, new_row):
        assert_no_other_terms(row)

    with time_machine.travel(timezone.now() + timedelta(days=2)):
        from keys.jobs import revoke_grace_ended  # the job that ends grace periods

        revoke_grace_ended()
        old_page = page_text(admin_client.get(change_url(old)).content.decode())
        assert "automatically revoked after the grace period" in old_page
        assert_no_other_terms(old_page)
        row = row_of(admin_client.get(LIST_URL).content.decode(), old)
        assert f"Old key replaced by the new key {new.display_id}" in row
        assert_no_other_terms(row)


def test_find_the_key_in_the_list_and_click_rotate_or_revoke(
    admin_client: Any, staff_client: Any, make_key: Any
) -> None:
    """The manual: "Find the key to rotate in the list. Click Rotate." and "Find the key in the
    list. Click Revoke." Each row offers what may be done to it, to whom may do it."""
    active, _ = make_key(name="Website form")
    revoked, _ = make_key(name="Retired")
    services.key_revoke(key=revoked, actor=ACTOR)
    html = admin_client.get(LIST_URL).content.decode()
    rotate = reverse("admin:keys_apikey_rotate", args=[active.pk])
    revoke = reverse("admin:keys_apikey_revoke", args=[active.pk])
    assert f'href="{rotate}"' in html and f'href="{revoke}"' in html
    for page in ("rotate", "revoke"):
        assert reverse(f"admin:keys_apikey_{page}", args=[revoked.pk]) not in html
    viewer = staff_client("keys.view_apikey").get(LIST_URL).content.decode()
    assert rotate not in viewer and revoke not in viewer
    revoker = staff_client("keys.view_apikey", "keys.revoke_apikey").get(LIST_URL).content.decode()
    assert revoke in revoker and rotate not in revoker
