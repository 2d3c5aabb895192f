"""Admin > Key policy, and the policy on the Generate page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from keys import services
from keys.models import APIKey, KeyPolicy
from tests.helpers import form_nonce, generate_data

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:keys_apikey_add")
POLICY_URL = reverse("admin:keys_keypolicy_change", args=[1])
OPS = Actor(label="ops")


def set_policy(**data: Any) -> None:
    services.policy_update(data=data, actor=OPS)


def policy_form(**overrides: Any) -> dict[str, Any]:
    data = {
        "max_lifetime_days": "90",
        "require_description": "on",
        "default_expiry": "30d",
        "ip_allowlist_actions": ["delete", "export"],
        "rotation_days": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_the_policy_page_changes_the_policy_with_an_audit_entry(admin_client: Any) -> None:
    response = admin_client.get(reverse("admin:keys_keypolicy_changelist"))
    assert response.status_code == 302 and response["Location"] == POLICY_URL
    page = admin_client.get(POLICY_URL).content.decode()
    assert "Never changed: the defaults." in page
    assert "Every active key meets the policy." in page
    response = admin_client.post(POLICY_URL, policy_form())
    assert response.status_code == 302
    policy = KeyPolicy.objects.get()
    assert (policy.max_lifetime_days, policy.require_description) == (90, True)
    assert (policy.default_expiry, policy.ip_allowlist_actions) == ("30d", ["delete", "export"])
    entry = AuditEntry.objects.get(action=AuditAction.POLICY_CHANGED)
    assert entry.actor_label == "admin"
    assert entry.after["max_lifetime_days"] == 90
    page = admin_client.get(POLICY_URL).content.decode()
    assert "The key policy was changed." in page and "by admin" in page


def test_an_inconsistent_policy_is_a_form_error(admin_client: Any) -> None:
    response = admin_client.post(POLICY_URL, policy_form(default_expiry="1y"))
    assert response.status_code == 200
    assert "is longer than the maximum lifetime (90 days)" in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_the_policy_page_lists_keys_that_break_it(admin_client: Any) -> None:
    services.key_generate(
        name="Forever", scopes={"contacts": ["view"]}, expiry_policy="never", actor=OPS
    )
    admin_client.post(POLICY_URL, policy_form())
    page = admin_client.get(POLICY_URL).content.decode()
    assert "Active keys that break this policy (1)" in page
    assert "Forever" in page and "never expires; no description" in page
    assert APIKey.objects.get().expires_at is None  # listed, not changed


def test_who_may_see_and_change_the_policy(staff_client: Any) -> None:
    assert staff_client("keys.view_apikey").get(POLICY_URL).status_code == 403
    viewer = staff_client("keys.view_keypolicy")
    page = viewer.get(POLICY_URL).content.decode()
    assert 'name="max_lifetime_days"' not in page
    assert viewer.post(POLICY_URL, policy_form()).status_code == 403
    editor = staff_client("keys.change_keypolicy")
    assert editor.post(POLICY_URL, policy_form()).status_code == 302
    assert KeyPolicy.current().max_lifetime_days == 90
    # One policy: no list of policies to add to, nothing to delete.
    assert editor.get(reverse("admin:keys_keypolicy_add")).status_code == 403
    assert editor.post(reverse("admin:keys_keypolicy_delete", args=[1])).status_code == 403


def test_generate_page_hides_expiry_choices_beyond_the_maximum(admin_client: Any) -> None:
    set_policy(max_lifetime_days=90, default_expiry="30d", require_description=True)
    page = admin_client.get(ADD_URL).content.decode()
    assert 'value="never"' not in page and 'value="1y"' not in page
    radio = page.split('value="30d"')[1].split(">")[0]
    assert "checked" in radio  # the policy's default expiry
    last = timezone.localdate() + timedelta(days=90)
    assert f'max="{last.isoformat()}"' in page
    assert "The key policy allows keys of at most 90 days" in page
    assert "Required by the key policy." in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"description": ""}, "description", "The key policy requires a description"),
        ({"expiry_policy": "never"}, "expiry_policy", "Select a valid choice"),
        (
            {
                "expiry_policy": "custom",
                "expiry_date": (timezone.localdate() + timedelta(days=200)).isoformat(),
            },
            "expiry_policy",
            "choose an expiry up to",
        ),
        (
            {"scopes__contacts__export": "on"},
            "allowed_ips",
            "requires allowed IP ranges for a key that may delete or export (Contacts: Export)",
        ),
    ],
)
def test_generate_form_errors_from_the_policy(
    admin_client: Any, overrides: dict[str, str], field: str, message: str
) -> None:
    set_policy(
        max_lifetime_days=90, require_description=True, ip_allowlist_actions=["delete", "export"]
    )
    nonce = form_nonce(admin_client.get(ADD_URL).content.decode())
    response = admin_client.post(ADD_URL, generate_data(nonce, **overrides))
    html = response.content.decode()
    assert message in html
    assert f"field-{field}" in html.split(message)[0].rsplit('class="form-row', 1)[-1]
    assert not APIKey.objects.exists()


def test_generate_with_the_allowlist_the_policy_asks_for(admin_client: Any) -> None:
    set_policy(ip_allowlist_actions=["export"])
    nonce = form_nonce(admin_client.get(ADD_URL).content.decode())
    response = admin_client.post(
        ADD_URL,
        generate_data(nonce, scopes__contacts__export="on", allowed_ips="203.0.113.0/24"),
    )
    assert "icrm_" in response.content.decode()
    assert APIKey.objects.get().allowed_ips == "203.0.113.0/24"
