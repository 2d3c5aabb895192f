"""The privilege ceiling in a real Chromium: a person with a narrow role sees what they cannot
grant greyed out, presets and "Same as role…" fill only what they hold, and a forged or stale
form is refused with an error naming what they lack."""

from __future__ import annotations

from typing import Any

import pytest

from keys.models import APIKey
from tests.helpers import call_api, person, role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY_PERMS = ("keys.view_apikey", "keys.add_apikey", "keys.change_apikey")


def checked(page: Any) -> set[str]:
    return {
        el.get_attribute("id").removeprefix("id_scopes_")
        for el in page.locator(".scope-matrix input[type=checkbox]:checked").all()
    }


def log_in_as(page: Any, username: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_a_narrow_role_grants_only_what_it_holds(
    chromium_page: Any, live_server: Any, shot: Any
) -> None:
    sam = person("sam", *KEY_PERMS)
    sam.groups.add(role("Sales", "crm.view_contact", "crm.add_contact", "crm.view_lead"))
    role("Analysts", "crm.view_contact", "crm.export_contact", "crm.view_opportunity")
    page = chromium_page
    log_in_as(page, "sam")
    page.goto("/admin/keys/apikey/add/")
    assert page.locator("#id_scopes_contacts_delete").is_disabled()
    assert page.locator("#id_scopes_contacts_create").is_enabled()
    assert "you do not hold yourself" in page.text_content(".scope-ceiling-note")
    assert page.locator("#id_owner").input_value() == str(sam.pk)

    page.get_by_role("button", name="Full integration").click()
    assert checked(page) == {"contacts_view", "contacts_create", "leads_view"}
    note = page.text_content(".scope-capped-note")
    assert note.startswith("Left out, because you do not hold it yourself: Contacts: Edit")
    shot(page, "ceiling-full-preset-capped")

    page.get_by_label("Same as role…").select_option("Analysts")
    assert checked(page) == {"contacts_view"}
    assert "Contacts: Export · Opportunities: View" in page.text_content(".scope-capped-note")
    shot(page, "ceiling-same-as-role")

    # A page opened before a permission was taken away, or a forged one: the server refuses.
    page.evaluate("document.getElementById('id_scopes_contacts_delete').disabled = false")
    page.check("#id_scopes_contacts_delete")
    page.fill("#id_name", "Website form")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector(".errornote")
    errors = page.text_content(".field-scopes .errorlist")
    assert "sam does not hold Contacts: Delete" in errors
    shot(page, "ceiling-refused")
    assert not APIKey.objects.exists()

    page.get_by_role("button", name="Website contact form").click()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    full_key = page.input_value("#generated-key")
    assert (
        call_api(
            live_server.url,
            "/api/v1/contacts/",
            full_key,
            method="POST",
            body={"first_name": "Ada", "last_name": "Lovelace"},
        )[0]
        == 201
    )
    key = APIKey.objects.get()
    assert (key.owner, key.granted_by, key.scopes) == (sam, sam, {"contacts": ["create"]})

    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    shot(page, "ceiling-key-page")
    assert page.locator("#id_scopes_leads_edit").is_disabled()
    assert "sam" in page.text_content(".field-granted_by_display")


@pytest.mark.parametrize(("scheme", "width"), [("dark", 1280), ("dark", 390)], ids=str)
def test_the_capped_matrix_in_dark_mode_and_at_phone_width(
    new_page: Any, live_server: Any, shot: Any, scheme: str, width: int
) -> None:
    person("sam", *KEY_PERMS, "crm.view_contact", "crm.add_contact", "crm.view_lead")
    role("Analysts", "crm.view_contact", "crm.export_contact")
    page = new_page(color_scheme=scheme, width=width)
    log_in_as(page, "sam")
    page.goto("/admin/keys/apikey/add/")
    page.get_by_role("button", name="BI/reporting tool").click()
    assert checked(page) == {"contacts_view", "leads_view"}
    shot(page, f"ceiling-generate-{scheme}-{width}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
