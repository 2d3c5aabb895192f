"""The admin login under brute force, in a real Chromium: locked after a handful of wrong
passwords with a message that says why and for how long, then unlocked by an administrator."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from audit.models import AuditAction, AuditEntry
from tests.helpers import ADMIN_PASSWORD, ADMIN_USER

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def attempt(page: Any, password: str) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_load_state()


def test_login_locks_after_five_failures_and_unlocks(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    page = chromium_page
    for i in range(4):
        attempt(page, f"wrong-{i}")
        assert "Please enter the correct username and password" in page.content()
    attempt(page, "wrong-4")
    shot(page, "login-locked")
    alert = page.get_by_role("alert")
    assert (
        "for this username or from this address: login is locked for 15 minutes"
        in alert.inner_text()
    )
    assert "Try again after" in alert.inner_text()

    attempt(page, ADMIN_PASSWORD)  # the right password changes nothing while locked
    assert "/admin/login/" in page.url and "locked for 15 minutes" in page.content()
    assert AuditEntry.objects.filter(action=AuditAction.LOGIN_LOCKED_OUT).count() == 1

    call_command("unlock_login", "--user", ADMIN_USER, "--ip", "127.0.0.1", stdout=io.StringIO())
    attempt(page, ADMIN_PASSWORD)
    page.wait_for_url("**/admin/")
    assert page.get_by_role("link", name="API keys", exact=True).is_visible()


def test_an_odd_filter_value_gets_a_page_that_says_which(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    from tests.helpers import login

    page = chromium_page
    login(page)
    response = page.goto("/admin/audit/auditentry/?key_id=%C2%B2")
    assert response.status == 400
    shot(page, "audit-bad-filter")
    assert "The parameter “key_id” cannot be used: expected a key number" in page.content()
    page.get_by_role("link", name="Show the unfiltered list").click()
    page.wait_for_url("**/admin/audit/auditentry/")
