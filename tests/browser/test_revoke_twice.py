"""A revocation submitted twice (double click, a second tab, reload) ends where the first one
did: on the key page, saying the key is revoked, when and by whom; one audit entry."""

from __future__ import annotations

from typing import Any

from audit.models import AuditAction, AuditEntry
from keys.models import APIKey
from tests.helpers import ADMIN_USER, generate, login


def test_the_second_revoke_submission_lands_on_the_key_page(
    new_page: Any, superuser: Any, shot: Any
) -> None:
    key = generate("Twice revoked").key
    first, second = new_page(), new_page()
    for page in (first, second):
        login(page)
        page.goto(f"/admin/keys/apikey/{key.pk}/revoke/")
    first.get_by_role("button", name="Yes, revoke this key").click()
    first.wait_for_selector(".messagelist .success")
    # The second click reaches the server after the first revocation committed.
    second.get_by_role("button", name="Yes, revoke this key").click()
    second.wait_for_selector(".messagelist li")
    shot(second, "revoke-submitted-twice")
    assert second.url.endswith(f"/admin/keys/apikey/{key.pk}/change/")
    message = second.text_content(".messagelist")
    assert "is revoked: it was revoked on" in message and f"by {ADMIN_USER}" in message
    assert "already revoked." not in message.lower()
    assert AuditEntry.objects.filter(key_id=key.pk, action=AuditAction.REVOKED).count() == 1


def test_the_revoke_page_of_a_revoked_key_does_not_offer_to_revoke_it(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    key = generate("Revoked already").key
    page = chromium_page
    login(page)
    page.goto(f"/admin/keys/apikey/{key.pk}/revoke/")
    page.get_by_role("button", name="Yes, revoke this key").click()
    page.wait_for_selector(".messagelist .success")
    page.goto(f"/admin/keys/apikey/{key.pk}/revoke/")  # "Back", or an old bookmark
    shot(page, "revoke-page-of-revoked-key")
    text = page.text_content("#content-main")
    assert "You are about to revoke" not in text
    assert "Revoking a key is immediate and permanent" not in text
    assert "already revoked: it was revoked on" in text and f"by {ADMIN_USER}" in text
    assert page.get_by_role("button", name="Yes, revoke this key").count() == 0


def test_bulk_revoke_submitted_twice_says_the_keys_were_already_revoked(
    new_page: Any, superuser: Any, shot: Any
) -> None:
    keys = [generate(f"Bulk {n}").key for n in (1, 2)]
    first, second = new_page(), new_page()
    for page in (first, second):
        login(page)
        page.goto("/admin/keys/apikey/")
        for key in keys:
            page.locator(f"input[name=_selected_action][value='{key.pk}']").check()
        page.select_option("select[name=action]", "revoke_selected")
        page.locator("button[name=index]").first.click()
        page.wait_for_selector("text=Yes, revoke 2 keys")
    first.get_by_role("button", name="Yes, revoke 2 keys").click()
    first.wait_for_selector(".messagelist .success")
    second.get_by_role("button", name="Yes, revoke 2 keys").click()
    second.wait_for_selector(".messagelist li")
    shot(second, "bulk-revoke-submitted-twice")
    message = second.text_content(".messagelist")
    assert "Revoked 0" not in message
    for key in keys:
        assert f"“{key.name}” ({key.display_id}) was already revoked on" in message
    assert AuditEntry.objects.filter(action=AuditAction.REVOKED).count() == 2
    assert APIKey.objects.filter(revoked_at__isnull=False).count() == 2
