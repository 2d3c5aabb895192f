"""Small things a newcomer met on the forms: a custom expiry of today, a crafted date, the
unused-days minimum, an alert already acknowledged."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from keys.alerts import services as alert_services
from keys.models import Alert, AlertKind, APIKey
from tests.helpers import ACTOR, generate, login


def test_a_custom_expiry_of_today_is_accepted(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    page = chromium_page
    login(page)
    page.goto("/admin/keys/apikey/add/")
    today = timezone.localdate().isoformat()
    assert page.get_attribute("#id_expiry_date", "min") == today  # the picker offers today
    page.fill("#id_name", "Until tonight")
    page.fill("#id_expiry_date", today)
    page.get_by_label("Contacts: View").check()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    assert f"{today}, end of day" in page.inner_text(".key-once-facts")
    assert APIKey.objects.get().expiry_day().isoformat() == today


def test_a_crafted_date_gets_one_clear_error(chromium_page: Any, superuser: Any, shot: Any) -> None:
    page = chromium_page
    login(page)
    page.goto("/admin/keys/apikey/add/")
    page.fill("#id_name", "Crafted date")
    page.check("#id_expiry_policy_4")
    # What a hand-made request sends: not a date at all.
    page.eval_on_selector("#id_expiry_date", "e => { e.type = 'text'; e.value = '2026-13-45'; }")
    page.get_by_label("Contacts: View").check()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector(".errornote")
    shot(page, "generate-crafted-date")
    errors = [e.inner_text() for e in page.locator(".errorlist li").all()]
    assert errors == ["Enter a valid date."]
    assert not APIKey.objects.exists()


def test_unused_days_below_one_get_the_same_message(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    key = generate("Thresholds").key
    page = chromium_page
    login(page)
    for value in ("0", "-1"):
        page.goto(f"/admin/keys/apikey/{key.pk}/change/")
        page.get_by_text("Usage alerts").click()
        # The input's own minimum is the rule's (its spinner stops at 1 day).
        assert page.get_attribute("#id_alert_unused_days", "min") == "1"
        page.fill("#id_alert_unused_days", value)
        page.get_by_role("button", name="Save", exact=True).click()
        page.wait_for_selector(".errornote")
        shot(page, f"unused-days-{value}")
        assert page.inner_text(".field-alert_unused_days .errorlist") == (
            "The unused-key threshold is at least 1 day."
        )


def test_an_acknowledged_alert_no_longer_offers_acknowledge(
    chromium_page: Any, superuser: Any, shot: Any
) -> None:
    key = generate("Alerting").key
    alert = Alert.objects.create(
        key=key,
        kind=AlertKind.UNUSED,
        measured_value=31,
        threshold=30,
        message="No request for 31 days.",
    )
    page = chromium_page
    login(page)
    page.goto(f"/admin/keys/alert/{alert.pk}/change/")
    page.get_by_role("button", name="Acknowledge").click()
    page.wait_for_selector(".messagelist li")
    shot(page, "alert-acknowledged")
    assert page.get_by_role("button", name="Acknowledge").count() == 0
    assert "Acknowledged by" in page.inner_text(".alert-handling")
    assert page.get_by_role("button", name="Resolve").count() == 1
    # A second acknowledgement (another tab) is refused, not recorded twice.
    with pytest.raises(alert_services.AlertServiceError, match="already acknowledged by"):
        alert_services.alert_acknowledge(alert=alert, actor=ACTOR)
