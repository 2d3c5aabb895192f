"""Admin > API keys > Revoke a leaked key, as a newcomer pastes what was found: a header, a
log line, a mistyped key, the old key of a rotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from keys import crypto, services
from keys.models import APIKey
from tests.helpers import ACTOR, ADMIN_USER, call_api, generate, login

LEAKED_URL = "/admin/keys/apikey/revoke-leaked/"


def paste(page: Any, text: str) -> None:
    page.goto(LEAKED_URL)
    page.fill("#id_full_key", text)
    page.get_by_role("button", name="Revoke the leaked key").click()


@pytest.mark.parametrize(
    "found",
    [
        "Bearer {key}",
        "Authorization: Bearer {key}",
        "X-API-Key: {key}",
        '10.0.0.7 - - [27/Nov/2026:13:05:00] "GET /api/v1/contacts/ HTTP/1.1" 200 x-api-key={key} "curl/8"',
        "  {key}\n",
    ],
)
def test_a_key_pasted_as_found_is_revoked(
    chromium_page: Any, superuser: Any, live_server: Any, shot: Any, found: str
) -> None:
    generated = generate("Pasted as found")
    page = chromium_page
    login(page)
    paste(page, found.format(key=generated.full_key))
    page.wait_for_selector(".messagelist .success")
    assert "was revoked as leaked" in page.text_content(".messagelist")
    assert APIKey.objects.get(pk=generated.key.pk).revoked_at is not None
    assert call_api(live_server.url, "/api/v1/contacts/", generated.full_key)[0] == 401


def test_refusals_say_why_and_never_show_the_key_again(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    one, two = generate("One"), generate("Two")
    page = chromium_page
    login(page)
    mistyped = one.full_key[:-1] + ("A" if one.full_key[-1] != "A" else "B")
    cases = [
        (mistyped, "mistyped: its checksum does not match"),
        (f"Bearer {one.full_key} and X-API-Key: {two.full_key}", "holds 2 different keys"),
        ("Bearer nothing-here", "not a well-formed crm-keys API key"),
    ]
    for text, says in cases:
        paste(page, text)
        page.wait_for_selector(".errorlist")
        shot(page, "leaked-form-refused")
        errors = page.text_content(".errorlist")
        assert says in errors
        assert len(page.locator(".errorlist li").all()) == 1
        html = page.content()
        for full in (one.full_key, two.full_key, mistyped):
            assert full[len(crypto.PREFIX) + 14 :] not in html  # the secret part, anywhere
        assert page.input_value("#id_full_key") == ""
    assert not APIKey.objects.filter(revoked_at__isnull=False).exists()


def test_the_leaked_old_key_of_a_rotation_leaves_the_new_key_working(
    chromium_page: Any, superuser: Any, live_server: Any, shot: Any
) -> None:
    generated = generate("Rotated then leaked")
    rotated = services.key_rotate(key=generated.key, grace=timedelta(hours=24), actor=ACTOR)
    page = chromium_page
    login(page)
    paste(page, generated.full_key)
    page.wait_for_selector(".messagelist .success")
    shot(page, "leaked-old-key-of-a-rotation")
    message = page.text_content(".messagelist")
    assert f"its new key {rotated.key.display_id} stays active" in message
    assert "no new key is needed" in message
    assert "Generate a replacement" not in message
    status = " ".join(page.text_content(".field-status_display .readonly").split())
    assert status.startswith(f"Revoked by {ADMIN_USER} on ")
    assert status.index("Old key") > status.index(f"by {ADMIN_USER}")
    assert f"replaced by the new key {rotated.key.display_id}" in status
    assert call_api(live_server.url, "/api/v1/contacts/", rotated.full_key)[0] == 200
    assert call_api(live_server.url, "/api/v1/contacts/", generated.full_key)[0] == 401
