"""What a first-time admin trips over, in a real Chromium: a pasted full key, a custom expiry
date, a very long name at desktop and phone width, the back button after Generate, and the
Generate form's permission hint. Screenshots under test-artifacts/screenshots/."""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from keys.models import APIKey
from tests.helpers import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY_RE = re.compile(r"icrm_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"


def secret_of(full: str) -> str:
    return full.split("_", 2)[2]


def test_search_with_a_full_key_keeps_the_secret_out_of_the_url(
    chromium_page: Any, superuser: Any, make_key: Any, shot: Any
) -> None:
    key, full = make_key(name="Zapier Connector")
    make_key(name="Other integration")
    page = chromium_page
    login(page)
    page.goto("/admin/keys/apikey/")
    page.evaluate("key => navigator.clipboard.writeText(key)", full)
    page.focus("#searchbar")
    page.keyboard.press("Control+V")
    page.wait_for_function("document.getElementById('searchbar').value.length < 30", timeout=5000)
    assert page.input_value("#searchbar") == f"icrm_{key.public_id}"
    assert page.locator(".key-search-guard").is_visible()
    shot(page, "search-pasted-full-key")
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    assert secret_of(full) not in page.url
    assert secret_of(full) not in page.content()
    assert page.locator("#result_list").get_by_text("Zapier Connector").is_visible()
    assert page.locator("#result_list").get_by_text("Other integration").count() == 0
    history = page.evaluate("history.length")
    # A URL typed (or shared) with the key: redirected, with the offer to revoke it.
    page.goto(f"/admin/keys/apikey/?q={full}")
    assert secret_of(full) not in page.url
    assert page.evaluate("history.length") == history + 1  # one entry, the clean one
    assert page.get_by_text("The address contained a full API key").is_visible()
    shot(page, "search-typed-full-key-redirected")
    page.get_by_role("link", name="revoke it by its value").click()
    page.fill("#id_full_key", full)
    page.fill("#id_reason", "pasted in a chat")
    shot(page, "revoke-leaked-form")
    page.get_by_role("button", name="Revoke the leaked key").click()
    page.wait_for_selector(".messagelist .success")
    assert "revoked as leaked" in page.text_content(".messagelist")
    assert secret_of(full) not in page.content() and secret_of(full) not in page.url
    shot(page, "revoke-leaked-done")
    assert APIKey.objects.get(pk=key.pk).revoked_at is not None


def test_a_percent_encoded_key_pasted_into_the_search_is_cut_back_too(
    chromium_page: Any, superuser: Any, make_key: Any
) -> None:
    key, full = make_key(name="Zapier Connector")
    page = chromium_page
    login(page)
    page.goto("/admin/audit/auditentry/")
    encoded = full.replace("_", "%5F")
    page.evaluate("key => navigator.clipboard.writeText(key)", encoded)
    page.focus("#searchbar")
    page.keyboard.press("Control+V")
    page.wait_for_function("document.getElementById('searchbar').value.length < 30", timeout=5000)
    assert page.input_value("#searchbar") == f"icrm_{key.public_id}"
    with page.expect_navigation():
        page.press("#searchbar", "Enter")
    assert secret_of(full) not in page.url and "%5F" + secret_of(full) not in page.url
    # Typed into the address bar, encoded: redirected to the clean address.
    page.goto(f"/admin/audit/auditentry/?q={encoded}")
    assert secret_of(full) not in page.url and secret_of(full) not in page.content()
    assert page.get_by_text("The address contained a full API key").is_visible()


def test_custom_expiry_shows_the_chosen_date(chromium_page: Any, superuser: Any, shot: Any) -> None:
    day = timezone.localdate() + timedelta(days=60)
    text = f"{day.isoformat()}, end of day UTC"
    page = chromium_page
    login(page)
    page.goto("/admin/keys/apikey/add/")
    page.fill("#id_name", "Quarterly export")
    page.fill("#id_expiry_date", day.isoformat())
    assert page.locator("#id_expiry_policy_4").is_checked()  # typing a date picks "Custom"
    page.get_by_label("Contacts: Export").check()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    assert text in page.inner_text(".key-once-facts")
    shot(page, "custom-date-show-once")
    page.get_by_role("link", name=re.compile("go to the key page")).click()
    page.wait_for_selector("#apikey_form")
    assert text in page.inner_text(".field-expires_display")
    page.goto("/admin/keys/apikey/")
    cell = page.locator("#result_list td.field-expires_column").first.inner_text()
    assert text in " ".join(cell.split())
    after = (day + timedelta(days=1)).isoformat()
    assert after not in page.inner_text("#result_list")
    shot(page, "custom-date-list")


@pytest.mark.parametrize(("width", "scheme"), [(1280, "light"), (390, "light"), (1280, "dark")])
def test_a_long_unbroken_name_never_widens_the_list(
    new_page: Any, superuser: Any, make_key: Any, shot: Any, width: int, scheme: str
) -> None:
    name = "ZapierWebhookIntegrationForTheEuropeanSalesTeam" * 3  # 141 chars...
    name = name[:100]  # ...cut to the longest name allowed
    key, _ = make_key(name=name)
    make_key(
        name="BI Tool Access",
        expiry_policy="custom",
        expiry_date=timezone.localdate() + timedelta(days=3),
    )
    page = new_page(width=width, color_scheme=scheme)
    login(page)
    page.goto("/admin/keys/apikey/")
    shot(page, f"list-long-name-{scheme}-{width}")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    fits = page.evaluate(
        """() => {
            const table = document.getElementById('result_list');
            const box = table.closest('.results') || table.parentElement;
            return table.getBoundingClientRect().width <= box.getBoundingClientRect().width + 1;
        }"""
    )
    assert fits
    cell = page.locator("#result_list .key-name", has_text=name[:30])
    assert cell.get_attribute("title") == name  # the whole name on hover
    # Every column after Name is on screen, not scrolled away.
    status = page.locator("#result_list td.field-status_column").first.bounding_box()
    assert status["x"] + status["width"] <= width + 1
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    shot(page, f"key-page-long-name-{scheme}-{width}")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)


def test_back_from_the_key_page_after_generate_needs_no_resubmission(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    page = chromium_page
    login(page)
    page.goto("/admin/keys/apikey/add/")
    page.fill("#id_name", "Website form")
    page.get_by_role("button", name="Website contact form").click()
    # The show-once page's script has not arrived when the admin moves on (a slow network, a
    # quick click): leaving it must still not leave a form resubmission behind.
    held: list[Any] = []
    page.route("**/keys/copy_key*.js", lambda route: held.append(route))
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    full = page.input_value("#generated-key")
    page.get_by_role("link", name=re.compile("go to the key page")).click()
    page.wait_for_selector("#apikey_form")
    page.unroute("**/keys/copy_key*.js")
    for route in held:
        with contextlib.suppress(Exception):  # its page is gone
            route.abort()

    page.go_back()
    page.wait_for_load_state()
    shot(page, "back-from-key-page-after-generate")
    # Not Chrome's "Confirm Form Resubmission" (ERR_CACHE_MISS) page, and never the key again.
    assert page.locator("#content-main").count() == 1
    assert "was shown once" in page.inner_text("#content-main")
    assert full not in page.content() and not KEY_RE.search(page.content())
    assert APIKey.objects.count() == 1

    # Back once more: the Generate form, its hint in step with the boxes the browser restored.
    page.go_back()
    page.wait_for_selector("#apikey_form")
    checked = page.locator(".scope-matrix input[type=checkbox]:checked").count()
    summary = page.inner_text(".scope-summary")
    if checked:
        assert summary.startswith(f"{checked} of 15"), summary
    else:
        assert "No permission selected" in summary
    shot(page, "back-to-generate-form")
    assert APIKey.objects.count() == 1


def test_generate_form_hint_is_calm_when_fresh_and_the_error_shown_once(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    page = chromium_page
    login(page)
    page.goto("/admin/keys/apikey/add/")
    summary = page.locator(".scope-summary")
    assert "scope-summary--empty" not in (summary.get_attribute("class") or "")
    error_colour = page.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--error-fg').trim()"
    )
    colour = summary.evaluate("el => getComputedStyle(el).color")
    assert colour != page.evaluate(
        "c => { const d = document.createElement('div'); d.style.color = c;"
        " document.body.append(d); const v = getComputedStyle(d).color; d.remove(); return v; }",
        error_colour,
    )
    shot(page, "generate-fresh")
    page.fill("#id_name", "No permissions")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector(".errornote")
    text = page.inner_text("#content-main")
    assert text.count("at least one permission") + text.count("No permission selected") == 1
    shot(page, "generate-no-permission-error")
    page.get_by_label("Contacts: View").check()
    assert page.inner_text(".scope-summary").startswith("1 of 15")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone_width_audit_log_key_page_chart_and_matrix(
    new_page: Any, superuser: Any, make_key: Any, shot: Any, scheme: str
) -> None:
    from keys import services
    from keys.models import UsageHour
    from tests.helpers import ACTOR

    key, _ = make_key(name="Marketing automation", scopes={"leads": ["view"]})
    services.key_update(
        key=key,
        data={"name": "Marketing sync", "scopes": {"leads": ["view", "create"]}},
        actor=ACTOR,
    )
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for i in range(0, 160, 7):
        UsageHour.objects.create(
            key=key,
            hour=hour - timedelta(hours=i),
            endpoint="GET /api/v1/leads/",
            requests=40 + i,
            errors=i % 5,
        )
    page = new_page(width=390, color_scheme=scheme)
    login(page)

    page.goto("/admin/audit/auditentry/")
    shot(page, f"audit-log-phone-{scheme}")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    first = page.locator("#result_list tbody tr").first
    for column in (
        "field-time_column",
        "field-actor_label",
        "field-action_column",
        "field-key_column",
    ):
        cell = first.locator(f".{column}")
        assert cell.is_visible(), column
        box = cell.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, column

    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    shot(page, f"key-page-phone-{scheme}")
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    assert page.evaluate(
        "[...document.querySelectorAll('.key-panel .key-table-scroll')]"
        ".every(el => el.scrollWidth <= el.clientWidth + 1)"
    )
    # The chart's axis labels are readable (at least 10 px tall on screen).
    heights = page.evaluate(
        "[...document.querySelectorAll('.key-usage-chart svg')]"
        ".filter(svg => svg.getBoundingClientRect().width > 0)"
        ".flatMap(svg => [...svg.querySelectorAll('text')])"
        ".map(t => t.getBoundingClientRect().height).filter(h => h > 0)"
    )
    assert heights and min(heights) >= 10, heights
    # The permission matrix's tap targets are finger-sized.
    boxes = page.evaluate(
        "[...document.querySelectorAll('label.scope-cell')]"
        ".map(l => { const r = l.getBoundingClientRect(); return [r.width, r.height]; })"
    )
    assert boxes and all(w >= 44 and h >= 44 for w, h in boxes), boxes
    box = page.locator("#id_scopes_leads_view").bounding_box()
    assert box["width"] >= 20 and box["height"] >= 20
