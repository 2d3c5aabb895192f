"""A staff user with only "view API key" who follows a link to a page they may not open sees
the admin's own 403 page (header, breadcrumbs, dark mode, phone width), naming the missing
permission, and finds the way back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import ADMIN_PASSWORD, ADMIN_USER, login, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"


@pytest.fixture
def viewer(transactional_db: Any) -> Any:
    user = person(ADMIN_USER, "keys.view_apikey")
    user.set_password(ADMIN_PASSWORD)
    user.save()
    return user


@pytest.mark.parametrize(("scheme", "width"), [("light", 1366), ("dark", 390)])
def test_a_missing_permission_is_a_page_in_the_admin_with_the_way_back(
    new_page: Any, viewer: Any, make_key: Any, shot: Any, scheme: str, width: int
) -> None:
    key, _ = make_key(name="Website form")
    page = new_page(color_scheme=scheme, width=width)
    login(page)
    response = page.goto(f"/admin/keys/apikey/{key.pk}/rotate/")
    assert response is not None and response.status == 403
    assert page.locator("#site-name").is_visible()  # the admin's header
    assert page.get_by_text("Can rotate API key").is_visible()
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    shot(page, f"forbidden-rotate-{scheme}-{width}")
    page.get_by_role("link", name="Back to the admin index").click()
    page.wait_for_url("**/admin/")
    assert page.get_by_role("link", name="API keys").first.is_visible()


def test_a_viewer_reads_the_whole_permission_matrix_at_phone_width(
    new_page: Any, viewer: Any, make_key: Any, shot: Any
) -> None:
    """The read-only matrix (no change permission) at 390 px: every action's heading shows
    (the rule hiding the editable matrix's toggle column hid "Export" here) and module names are
    not broken mid-word."""
    key, _ = make_key({"contacts": ["view", "export"], "opportunities": ["view"]}, name="BI tool")
    page = new_page(color_scheme="dark", width=390)
    login(page)
    page.goto(f"/admin/keys/apikey/{key.pk}/change/")
    matrix = page.locator("table.scope-matrix--readonly")
    for action in ("View", "Create", "Edit", "Delete", "Export"):
        assert matrix.locator("thead th", has_text=action).is_visible(), action
    lines = page.evaluate(
        """() => [...document.querySelectorAll('table.scope-matrix--readonly tbody th')].map(th => {
            const range = document.createRange(); range.selectNodeContents(th);
            return [th.textContent.trim(), range.getClientRects().length];
        })"""
    )
    assert lines == [["Contacts", 1], ["Leads", 1], ["Opportunities", 1]]
    assert page.evaluate(NO_SIDEWAYS_SCROLL)
    matrix.scroll_into_view_if_needed()
    shot(page, "key-page-read-only-matrix-dark-390")
