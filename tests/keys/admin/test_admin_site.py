"""The admin site as a whole. Admin > Users / Groups: the permission picker offers only what
one may sensibly be granted. Audit entries are written by the app alone (view only), keys are
never deleted, and the internal tables (usage rows, flush tokens, sessions, content types, the
admin's own log) have no permissions at all. "View site" leads to the API docs."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

pytestmark = pytest.mark.django_db

NEVER_GRANTED = [
    "Can add audit log entry",
    "Can change audit log entry",
    "Can delete audit log entry",
    "Can delete API key",
    "usage flush",
    "usage hour",
    "pruned usage",
    "unknown key usage hour",
    "outbox email",
    "key client",
    "recent error",
    "Can add log entry",
    "Can add session",
    "Can add content type",
    "Can add permission",
    "Can add alert",
    "Can change alert",
    "Can delete alert",
    "Can change alert recipient",
]
GRANTABLE = [
    "Can view audit log entry",
    "Can add API key",
    "Can change API key",
    "Can view API key",
    "Can rotate API key",
    "Can revoke API key",
    "Can view contact",
    "Can add user",
    "Can change group",
    "Can view alert",
    "Can acknowledge, snooze and resolve alerts",
    "Can add alert recipient",
    "Can delete alert recipient",
]


def picker_options(html: str, name: str = "user_permissions") -> str:
    """The picker's option labels, one per line ("API Keys | API key | Can view API key")."""
    match = re.search(rf'<select name="{name}".*?</select>', html, re.DOTALL)
    assert match, name
    return "\n".join(re.findall(r"<option[^>]*>([^<]*)</option>", match.group(0)))


def offered(text: str, options: str) -> bool:
    """A permission name is offered when an option ends with it; a model name when any
    option names it."""
    if text.startswith("Can "):
        return any(line.endswith(f"| {text}") for line in options.splitlines())
    return f"| {text} |" in options


def test_user_permission_picker_lists_only_grantable_permissions(
    admin_client: Any, admin_user: Any
) -> None:
    html = admin_client.get(reverse("admin:auth_user_change", args=[admin_user.pk])).content
    options = picker_options(html.decode())
    for text in NEVER_GRANTED:
        assert not offered(text, options), text
    for text in GRANTABLE:
        assert offered(text, options), text


def test_group_permission_picker_lists_only_grantable_permissions(admin_client: Any) -> None:
    html = admin_client.get(reverse("admin:auth_group_add")).content.decode()
    options = picker_options(html, "permissions")
    for text in NEVER_GRANTED:
        assert not offered(text, options), text
    for text in GRANTABLE:
        assert offered(text, options), text


def test_the_permissions_no_one_may_hold_do_not_exist() -> None:
    codenames = set(
        Permission.objects.filter(content_type__app_label__in=["keys", "audit"]).values_list(
            "codename", flat=True
        )
    )
    for gone in (
        "delete_apikey",
        "add_auditentry",
        "change_auditentry",
        "delete_auditentry",
        "add_usagehour",
        "view_usageflush",
        "view_prunedusage",
        "view_unknownkeyusagehour",
        "add_alert",
        "change_alert",
        "delete_alert",
    ):
        assert gone not in codenames
    assert {"view_auditentry", "add_apikey", "rotate_apikey", "revoke_apikey"} <= codenames


def test_view_site_is_the_api_docs_not_a_404(admin_client: Any) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "View site" not in html
    assert '<a href="/api/docs/">API docs</a>' in html
    assert admin_client.get("/api/docs/").status_code == 200
