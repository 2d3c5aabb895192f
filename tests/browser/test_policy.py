"""Admin > Key policy in a real Chromium: tighten the policy, see the keys that break it, and
the Generate page that follows it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from audit.models import AuditAction, AuditEntry
from keys import services
from keys.models import APIKey, KeyPolicy
from tests.helpers import ACTOR, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_tighten_the_policy_and_generate_under_it(
    chromium_page: Any, superuser: Any, make_key: Any, shot: Any
) -> None:
    make_key(name="Legacy forever", expiry_policy="never")
    page = chromium_page
    login(page)
    page.get_by_role("link", name="Key policy").click()
    page.wait_for_url("**/admin/keys/keypolicy/1/change/")
    shot(page, "policy-defaults")
    page.fill("#id_max_lifetime_days", "90")
    page.select_option("#id_default_expiry", "30d")
    page.check("#id_require_description")
    page.get_by_label("Delete").check()
    page.get_by_label("Export").check()
    page.get_by_role("button", name="Save").click()
    page.wait_for_selector(".messagelist .success")
    shot(page, "policy-tightened")
    breaches = page.text_content(".key-policy-breaches")
    assert "Legacy forever" in breaches and "never expires; no description" in breaches
    policy = KeyPolicy.current()
    assert (policy.max_lifetime_days, policy.ip_allowlist_actions) == (90, ["delete", "export"])
    assert AuditEntry.objects.filter(action=AuditAction.POLICY_CHANGED).count() == 1

    page.goto("/admin/keys/apikey/add/")
    assert page.locator("input[name=expiry_policy][value=never]").count() == 0
    assert page.locator("input[name=expiry_policy][value='1y']").count() == 0
    assert page.locator("input[name=expiry_policy][value='30d']").is_checked()
    assert "(default)" in page.text_content("label[for=id_expiry_policy_0]")  # 30 days
    page.fill("#id_name", "BI Tool Access")
    page.get_by_role("button", name="BI/reporting tool").click()
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector(".errornote")
    shot(page, "generate-policy-errors")
    assert "requires a description" in page.text_content(".field-description")
    assert "requires allowed IP ranges" in page.text_content(".field-allowed_ips")
    page.fill("#id_description", "Metabase, owner: data team")
    page.fill("#id_allowed_ips", "203.0.113.0/24")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_selector("#generated-key")
    key = APIKey.objects.get(name="BI Tool Access")
    assert key.expiry_policy == "30d" and key.allowed_ips == "203.0.113.0/24"


def test_old_keys_in_their_grace_period_are_not_listed_as_breaking_the_policy(
    chromium_page: Any, superuser: Any, make_key: Any, shot: Any
) -> None:
    old, _ = make_key(name="Rotated forever", expiry_policy="never")
    rotated = services.key_rotate(key=old, grace=timedelta(days=7), actor=ACTOR)
    services.policy_update(data={"require_description": True}, actor=ACTOR)
    page = chromium_page
    login(page)
    page.goto("/admin/keys/keypolicy/1/change/")
    shot(page, "policy-with-a-rotated-key")
    breaches = page.text_content(".key-policy-breaches")
    assert "Active keys that break this policy (1)" in breaches
    assert rotated.key.display_id in breaches  # the new key: it can be edited or rotated
    assert old.display_id not in breaches  # the old key's page is read-only
    intro = " ".join(page.text_content(".key-intro").split())
    assert "they are revoked automatically when their grace period ends" in intro
