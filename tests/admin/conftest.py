"""Admin test fixtures: staff users with exactly the permissions a test needs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

NONCE_RE = re.compile(r'name="form_nonce" value="([^"]+)"')


@pytest.fixture
def staff_client(db: Any) -> Callable[..., Client]:
    """staff_client("keys.view_apikey", ...) -> a logged-in client of a staff user with only
    those permissions."""

    def make(*perms: str) -> Client:
        user = User.objects.create_user(
            username=f"staff{User.objects.count()}", password="pw", is_staff=True
        )
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        client = Client()
        client.force_login(user)
        return client

    return make


def form_nonce(html: str) -> str:
    match = NONCE_RE.search(html)
    assert match, "no form_nonce in the page"
    return match.group(1)


def generate_data(nonce: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "form_nonce": nonce,
        "name": "Website form",
        "description": "Contact form on example.com, owner: web team",
        "expiry_policy": "90d",
        "expiry_date": "",
        "scopes__contacts__create": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}
