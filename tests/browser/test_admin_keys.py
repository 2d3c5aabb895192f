"""Admin > API Keys in a real Chromium: generate, copy and use a key, edit scopes, rotate,
revoke, read the audit log. Every page is saved under test-artifacts/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from keys.models import APIKey
from tests.helpers import call_api, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY_RE = re.compile(r"icrm_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


def checkbox(page: Any, module: str, action: str) -> Any:
    return page.locator(f"#id_scopes_{module}_{action}")


def checked_scopes(page: Any) -> set[str]:
    return {
        el.get_attribute("id").removeprefix("id_scopes_")
        for el in page.locator(".scope-matrix input[type=checkbox]:checked").all()
    }


def test_generate_with_preset_copy_use_and_reload(
    chromium_page: Any, superuser: Any, live_server: Any, shot: Any
) -> None:
    page = chromium_page
    login(page, shot)
    shot(page, "index")
    page.get_by_role("link", name="API keys", exact=True).click()
    shot(page, "list-empty")
    page.get_by_role("link", name="Generate API Key").click()
    page.wait_for_url("**/admin/keys/apikey/add/")
    assert page.locator("#id_expiry_policy_2").is_checked()  # 90 days by default
    page.fill("#id_name", "BI Tool Access")
    page.fill("#id_description", "Metabase, owner: data team")
    page.get_by_role("button", name="Full integration").click()
    assert page.locator(".scope-full-warning").is_visible()
    assert len(checked_scopes(page)) == 15
    shot(page, "generate-full-preset-warning")
    page.get_by_role("button", name="BI/reporting tool").click()
    assert not page.locator(".scope-full-warning").is_visible()
    assert checked_scopes(page) == {
        f"{m}_{a}" for m in ("contacts", "leads", "opportunities") for a in ("view", "export")
    }
    shot(page, "generate-bi-preset")

    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    shot(page, "show-once")
    full_key = page.input_value("#generated-key")
    assert KEY_RE.fullmatch(full_key)
    assert page.locator("#generated-key").get_attribute("readonly") is not None
    assert "shown only once" in page.content()
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")
    assert "Copied" in page.text_content("#copy-status")
    assert page.evaluate("navigator.clipboard.readText()") == full_key

    status, _ = call_api(live_server.url, "/api/v1/contacts/", full_key)
    assert status == 200
    status, _ = call_api(live_server.url, "/api/v1/contacts/export/", full_key)
    assert status == 200
    status, _ = call_api(
        live_server.url,
        "/api/v1/contacts/",
        full_key,
        method="POST",
        body={"first_name": "A", "last_name": "B"},
    )
    assert status == 403

    # Reload (the browser may re-send the POST): never the key again, never a second key.
    page.reload()
    page.wait_for_load_state()
    shot(page, "show-once-after-reload")
    assert full_key not in page.content()
    assert not KEY_RE.search(page.content())
    page.go_back()
    page.wait_for_load_state()
    assert full_key not in page.content()
    assert APIKey.objects.count() == 1

    page.goto("/admin/keys/apikey/")
    shot(page, "list-one-key")
    assert "BI Tool Access" in page.content() and full_key not in page.content()


def test_custom_matrix_edit_scopes_revoke_and_audit_log(
    chromium_page: Any, superuser: Any, live_server: Any, shot: Any
) -> None:
    page = chromium_page
    login(page)
    page.goto("/admin/keys/apikey/add/")
    page.fill("#id_name", "Website Form Integration")
    # Error first: no permission at all, and a custom date in the past.
    page.check("#id_expiry_policy_4")
    page.fill("#id_expiry_date", "2020-01-01")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector(".errornote")
    assert "at least one permission" in page.content()
    assert "cannot be in the past" in page.content()
    shot(page, "generate-errors")
    # Custom matrix: the Leads row toggle, then Contacts > View by its label.
    page.check("#id_expiry_policy_1")  # 30 days
    page.get_by_role("button", name="Toggle every action for Leads").click()
    checkbox(page, "leads", "delete").uncheck()
    page.get_by_label("Contacts: View").check()
    assert checked_scopes(page) == {
        "leads_view",
        "leads_create",
        "leads_edit",
        "leads_export",
        "contacts_view",
    }
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    full_key = page.input_value("#generated-key")
    assert call_api(live_server.url, "/api/v1/contacts/", full_key)[0] == 200
    assert call_api(live_server.url, "/api/v1/leads/", full_key)[0] == 200
    assert call_api(live_server.url, "/api/v1/opportunities/", full_key)[0] == 403

    page.get_by_role("link", name=re.compile("go to the key page")).click()
    page.wait_for_selector("#apikey_form")
    shot(page, "key-page")
    checkbox(page, "contacts", "view").uncheck()
    checkbox(page, "opportunities", "view").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector(".messagelist .success")
    assert call_api(live_server.url, "/api/v1/contacts/", full_key)[0] == 403
    assert call_api(live_server.url, "/api/v1/opportunities/", full_key)[0] == 200

    key = APIKey.objects.get()
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    page.get_by_role("link", name="Revoke").click()
    page.wait_for_selector("text=Revoking a key is immediate and permanent.")
    shot(page, "revoke-confirmation")
    page.fill("#id_reason", "integration retired")
    page.get_by_role("button", name="Yes, revoke this key").click()
    page.wait_for_selector(".messagelist .success")
    shot(page, "key-page-revoked")
    assert page.locator(".scope-matrix input[type=checkbox]").count() == 0
    assert page.get_by_role("link", name="Revoke").count() == 0
    status, headers = call_api(live_server.url, "/api/v1/opportunities/", full_key)
    assert status == 401 and "WWW-Authenticate" in headers

    page.get_by_role("link", name=re.compile("Full audit log for this key")).click()
    page.wait_for_selector("#result_list")
    shot(page, "audit-log-for-key")
    body = page.text_content("#result_list")
    for action in ("Generated", "Scopes changed", "Revoked"):
        assert action in body
    page.locator("#result_list tr", has_text="Scopes changed").locator("a").first.click()
    page.wait_for_selector("table.audit-diff")
    shot(page, "audit-entry-detail")
    diff = page.text_content("table.audit-diff")
    assert "contacts" in diff and "opportunities" in diff
    assert page.locator("input[name=_save]").count() == 0


def test_rotate_from_the_admin(
    chromium_page: Any, superuser: Any, live_server: Any, shot: Any, make_key: Any
) -> None:
    key, old_key = make_key({"contacts": ["view"]}, name="Zapier Connector")
    page = chromium_page
    login(page)
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    page.get_by_role("link", name="Rotate").click()
    page.wait_for_selector("text=Both the old and new key work during this window.")
    assert page.locator("#id_grace_1").is_checked()  # 24 hours by default
    shot(page, "rotate-confirmation")
    page.get_by_label("1 hour").check()
    page.get_by_role("button", name="Rotate", exact=True).click()
    page.wait_for_selector("#generated-key")
    shot(page, "rotate-show-once")
    new_key = page.input_value("#generated-key")
    assert KEY_RE.fullmatch(new_key) and new_key != old_key
    page.reload()  # the show-once page after a reload: still about a rotation, without the key
    page.wait_for_selector(".key-once-warning")
    shot(page, "rotate-shown-once-after-reload")
    assert page.text_content("#content h1") == "API key rotated"
    assert "shown once, when the key was rotated" in page.text_content(".key-once-warning")
    assert new_key not in page.content() and "generated" not in page.text_content("#content")

    status, headers = call_api(live_server.url, "/api/v1/contacts/", old_key)
    assert status == 200
    assert headers.get("Deprecation") and headers.get("Sunset")
    status, headers = call_api(live_server.url, "/api/v1/contacts/", new_key)
    assert status == 200 and "Deprecation" not in headers

    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    assert "This is the old key of a rotation" in page.content()
    assert page.get_by_role("link", name="Rotate").count() == 0  # already rotated
    shot(page, "key-page-in-grace")
    page.goto("/admin/keys/apikey/")
    shot(page, "list-after-rotation")
    assert "Old key · grace period" in page.content() and "old key icrm_" in page.content()


def test_a_revocation_redis_could_not_confirm_is_not_shown_as_a_plain_success(
    chromium_page: Any, superuser: Any, shot: Any, make_key: Any, settings: Any
) -> None:
    """Redis does not answer the admin's process: the revocation is saved, and the page says
    which processes may still lag instead of leaving only the success message."""
    key, _ = make_key({"contacts": ["view"]}, name="Legacy ERP")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    page = chromium_page
    login(page)
    page.goto(f"/admin/keys/apikey/{key.pk}/revoke/")
    page.get_by_role("button", name="Yes, revoke this key").click()
    page.wait_for_selector("ul.messagelist li.warning")
    shot(page, "revoke-not-announced-warning")
    warning = page.text_content("ul.messagelist li.warning")
    assert "The revocation is saved, but Redis did not confirm the notification" in warning
    assert page.locator("ul.messagelist li.success").count() == 0  # no "every request is refused"
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.parametrize(
    ("scheme", "width"), [("dark", 1280), ("light", 390), ("dark", 390)], ids=str
)
def test_pages_in_dark_mode_and_at_phone_width(
    new_page: Any,
    superuser: Any,
    live_server: Any,
    shot: Any,
    make_key: Any,
    scheme: str,
    width: int,
) -> None:
    key, _ = make_key({"contacts": ["view", "create"]}, name="Marketing automation")
    make_key(name="Expiring soon", expiry_policy="30d")
    page = new_page(color_scheme=scheme, width=width)
    suffix = f"{scheme}-{width}"
    login(page)
    page.goto("/admin/keys/apikey/")
    shot(page, f"list-{suffix}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.goto("/admin/keys/apikey/add/")
    page.get_by_role("button", name="Full integration").click()
    shot(page, f"generate-{suffix}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.fill("#id_name", "Phone key")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    shot(page, f"show-once-{suffix}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    shot(page, f"key-page-{suffix}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.goto(f"/admin/keys/apikey/{key.pk}/revoke/")
    shot(page, f"revoke-{suffix}")
    page.goto(f"/admin/keys/apikey/{key.pk}/rotate/")
    shot(page, f"rotate-{suffix}")
    page.goto("/admin/audit/auditentry/")
    shot(page, f"audit-log-{suffix}")
