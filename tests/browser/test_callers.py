"""Who is calling, in a real Chromium against the live server: the Clients and Recent errors
panels, the rotation cutover and "Revoke old key now", and removing unused permissions.
Integrations call the API server to server (urllib) with their own User-Agents; the usage
flush then runs as beat would run it. Screenshots under test-artifacts/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from keys.models import APIKey
from keys.usage import flush
from tests.browser.conftest import SCREENSHOTS
from tests.helpers import call_api, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ZAPIER = "Zapier/1.0 (+https://zapier.com/help)"
CRON = "crm-sync-cron/2.1 python-requests/2.32.3"


def rows_of(page: Any, panel: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in page.locator(f"{panel} tbody tr").all()
    ]


def no_sideways_scroll(page: Any) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_clients_with_two_user_agents_and_two_403s(
    new_page: Any, superuser: Any, live_server: Any, shot: Any, make_key: Any
) -> None:
    key, full = make_key({"contacts": ["view"]}, name="Zapier Connector")
    base = live_server.url
    for _ in range(3):
        assert call_api(base, "/api/v1/contacts/", full, agent=ZAPIER)[0] == 200
    assert call_api(base, "/api/v1/leads/", full, agent=ZAPIER)[0] == 403
    for _ in range(2):
        assert call_api(base, "/api/v1/contacts/", full, agent=CRON)[0] == 200
    status, _ = call_api(
        base, "/api/v1/contacts/", full, method="POST", body={"first_name": "A"}, agent=CRON
    )
    assert status == 403
    flush.flush()

    page = new_page()
    login(page)
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    clients = rows_of(page, ".key-clients")
    assert [(row[1], row[2]) for row in clients] == [(CRON, "3"), (ZAPIER, "4")]
    assert {row[0] for row in clients} == {"127.0.0.1"}
    errors = rows_of(page, ".key-errors")
    assert [(row[1], row[2]) for row in errors] == [
        ("POST /api/v1/contacts/", "403"),
        ("GET /api/v1/leads/", "403"),
    ]
    assert "does not have the contacts:create permission" in errors[0][3]
    assert "does not have the leads:view permission" in errors[1][3]
    assert CRON in errors[0][4] and ZAPIER in errors[1][4]
    page.locator(".key-clients").scroll_into_view_if_needed()
    shot(page, "key-page-clients-and-errors")

    phone = new_page(color_scheme="dark", width=390)
    login(phone)
    phone.goto(f"/admin/keys/apikey/{key.pk}/change/")
    shot(phone, "key-page-clients-and-errors-dark-390")
    assert no_sideways_scroll(phone)
    for panel in ("clients", "errors"):  # the full page is too tall to read at this width
        phone.locator(f".key-{panel}").screenshot(
            path=str(SCREENSHOTS / f"key-page-{panel}-dark-390.png")
        )


def test_rotation_cutover_and_revoke_old_key_now(
    chromium_page: Any, superuser: Any, live_server: Any, shot: Any, make_key: Any
) -> None:
    key, old_full = make_key({"contacts": ["view"]}, name="Marketing sync")
    base = live_server.url
    page = chromium_page
    login(page)
    page.goto(f"/admin/keys/apikey/{key.pk}/rotate/")
    page.get_by_role("button", name="Rotate", exact=True).click()
    page.wait_for_selector("#generated-key")
    new_full = page.input_value("#generated-key")

    assert call_api(base, "/api/v1/contacts/", old_full, agent=ZAPIER)[0] == 200  # not moved
    assert call_api(base, "/api/v1/contacts/", old_full, agent=CRON)[0] == 200
    assert call_api(base, "/api/v1/contacts/", new_full, agent=CRON)[0] == 200  # moved
    flush.flush()

    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    panel = page.locator(".key-cutover")
    assert panel.is_visible()
    assert "The old key was last used" in panel.inner_text()
    rows = rows_of(page, ".key-cutover")
    assert [(row[1], row[4]) for row in rows] == [
        (ZAPIER, "Still on the old key"),
        (CRON, "On the new key"),
    ]
    assert rows[0][3] == "—" and rows[1][3] != "—"  # Zapier never called the new key
    shot(page, "key-page-rotation-cutover")
    new_key = APIKey.objects.get(replaces=key)
    page.goto(f"/admin/keys/apikey/{new_key.pk}/change/")
    assert page.locator(".key-cutover").is_visible()  # the new key's page shows it too

    page.get_by_role("link", name="Revoke old key now").click()
    page.wait_for_selector("text=Revoking a key is immediate and permanent.")
    confirmation = page.locator(".key-cutover-last-used").inner_text()
    assert "It was last used" in confirmation and ZAPIER in confirmation
    shot(page, "revoke-old-key-now")
    page.get_by_role("button", name="Yes, revoke this key").click()
    page.wait_for_selector(".messagelist .success")
    assert call_api(base, "/api/v1/contacts/", old_full, agent=ZAPIER)[0] == 401
    assert call_api(base, "/api/v1/contacts/", new_full, agent=ZAPIER)[0] == 200


def test_unused_permissions_marked_removed_then_refused(
    chromium_page: Any, superuser: Any, live_server: Any, shot: Any, make_key: Any
) -> None:
    base = live_server.url
    scopes = {"contacts": ["view", "create"], "leads": ["view"]}
    with time_machine.travel(timezone.now() - timedelta(days=40), tick=True) as clock:
        key, full = make_key(scopes, name="Website form")
        clock.shift(timedelta(days=20))
        for _ in range(4):
            assert call_api(base, "/api/v1/contacts/", full, agent=ZAPIER)[0] == 200
        flush.flush()

    page = chromium_page
    login(page)
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    marks = {
        cell.locator("input").get_attribute("id").removeprefix("id_scopes_"): cell.locator(
            ".scope-usage"
        ).text_content()
        for cell in page.locator(".scope-matrix td[data-action]").all()
        if cell.locator(".scope-usage").count()
    }
    unused = "not used in the last 30 days"
    assert marks == {"contacts_view": "used", "contacts_create": unused, "leads_view": unused}
    page.locator(".field-scopes").scroll_into_view_if_needed()
    shot(page, "key-page-unused-permissions")
    page.get_by_role("link", name="Remove unused permissions…").click()
    page.wait_for_url(re.compile(r".*/remove-unused/$"))
    body = page.locator("#content-main").inner_text()
    assert "contacts:create" in body and "leads:view" in body
    assert "The key keeps: Contacts: View." in body
    shot(page, "remove-unused-confirmation")
    page.get_by_role("button", name="Yes, remove them").click()
    page.wait_for_selector(".messagelist .success")
    assert "Removed 2 unused permissions" in page.locator(".messagelist").inner_text()
    shot(page, "key-page-after-removing-unused")
    assert APIKey.objects.get(pk=key.pk).scopes == {"contacts": ["view"]}

    status, _ = call_api(base, "/api/v1/contacts/", full, method="POST", body={"first_name": "A"})
    assert status == 403
    assert call_api(base, "/api/v1/leads/", full)[0] == 403
    assert call_api(base, "/api/v1/contacts/", full)[0] == 200
