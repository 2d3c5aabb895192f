"""A staff user who follows a link they lack the permission for gets a 403 page in the admin's
look that names the missing permission and leads back to the admin index, never Django's bare
"403 Forbidden" and never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from keys.models import Alert, AlertKind
from tests.helpers import page_text

pytestmark = pytest.mark.django_db

VIEW = "keys.view_apikey"


def assert_admin_403(response: Any, *needed: str) -> str:
    assert response.status_code == 403
    html = response.content.decode()
    text = page_text(html)
    assert "Intellicon CRM Admin" in text  # the admin's header
    assert 'href="/admin/"' in html  # the way back
    assert "Permission needed" in text
    for permission in needed:
        assert permission in text, (permission, text)
    return text


@pytest.mark.parametrize(
    ("perms", "url", "needed"),
    [
        ((), lambda k, a: reverse("admin:keys_apikey_changelist"), ["Can view API key"]),
        ((), lambda k, a: reverse("admin:keys_apikey_change", args=[k.pk]), ["Can view API key"]),
        (
            (VIEW,),
            lambda k, a: reverse("admin:keys_apikey_rotate", args=[k.pk]),
            ["Can rotate API key"],
        ),
        (
            (VIEW,),
            lambda k, a: reverse("admin:keys_apikey_revoke", args=[k.pk]),
            ["Can revoke API key"],
        ),
        ((VIEW,), lambda k, a: reverse("admin:keys_apikey_revoke_leaked"), ["Can revoke API key"]),
        ((VIEW,), lambda k, a: reverse("admin:keys_apikey_add"), ["Can add API key"]),
        ((VIEW,), lambda k, a: reverse("admin:keys_keypolicy_changelist"), ["Can view key policy"]),
        (
            (VIEW,),
            lambda k, a: reverse("admin:keys_keypolicy_change", args=[1]),
            ["Can view key policy"],
        ),
        ((VIEW,), lambda k, a: reverse("admin:keys_alert_changelist"), ["Can view alert"]),
        ((VIEW,), lambda k, a: reverse("admin:keys_alert_change", args=[a.pk]), ["Can view alert"]),
        (
            (VIEW,),
            lambda k, a: reverse("admin:audit_auditentry_changelist"),
            ["Can view audit log entry"],
        ),
        (
            (VIEW,),
            lambda k, a: reverse("admin:keys_alertrecipient_changelist"),
            ["Can view alert recipient"],
        ),
        ((VIEW,), lambda k, a: reverse("admin:auth_user_changelist"), ["Can view user"]),
        # Rotate and Revoke also need "view": both missing permissions are named.
        (
            (),
            lambda k, a: reverse("admin:keys_apikey_rotate", args=[k.pk]),
            ["Can view API key", "Can rotate API key"],
        ),
        (
            ("keys.rotate_apikey",),
            lambda k, a: reverse("admin:keys_apikey_rotate", args=[k.pk]),
            ["Can view API key"],
        ),
    ],
)
def test_a_missing_permission_gets_the_admin_403_page(
    staff_client: Any, make_key: Any, perms: tuple[str, ...], url: Any, needed: list[str]
) -> None:
    key, _ = make_key(name="Payroll export")
    alert = Alert.objects.create(key=key, kind=AlertKind.UNUSED, measured_value=40, threshold=30)
    text = assert_admin_403(staff_client(*perms).get(url(key, alert)), *needed)
    assert "Payroll export" not in text  # nothing about an object one may not see


def test_the_page_does_not_list_a_permission_already_held(staff_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    text = assert_admin_403(
        staff_client(VIEW).get(reverse("admin:keys_apikey_rotate", args=[key.pk])),
        "Can rotate API key",
    )
    assert "Can view API key" not in text


def test_a_post_without_permission_gets_the_page_too(staff_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    alert = Alert.objects.create(key=key, kind=AlertKind.UNUSED, measured_value=40, threshold=30)
    viewer = staff_client(VIEW, "keys.view_alert")
    response = viewer.post(reverse("admin:keys_alert_resolve", args=[alert.pk]))
    assert_admin_403(response, "Can acknowledge, snooze and resolve alerts")


def test_what_nobody_may_do_says_so(admin_client: Any, make_key: Any) -> None:
    """Keys are never deleted and audit entries never changed: no permission grants it."""
    key, _ = make_key()
    response = admin_client.get(reverse("admin:keys_apikey_delete", args=[key.pk]))
    text = assert_admin_403(response)
    assert "No permission allows this" in text
