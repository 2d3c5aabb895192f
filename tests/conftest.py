"""Shared fixtures: keys made through the real service, an API client, the actor of a test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from rest_framework.test import APIClient

from audit.actors import Actor
from keys import services
from keys.api import protections
from keys.models import APIKey


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-browser",
        action="store_true",
        help="fail (instead of skip) when Chromium is missing for the browser tests",
    )


@pytest.fixture(autouse=True)
def _fresh_rate_limit_counters() -> None:
    """Rate-limit and failure counters start empty: on SQLite a rolled-back test gives its key
    ids to the next test, which would otherwise inherit the old key's counts."""
    protections.reset_local_state()


@pytest.fixture
def actor() -> Actor:
    return Actor(label="test-admin", ip="127.0.0.1", user_agent="pytest")


@pytest.fixture
def make_key(db: Any, actor: Actor) -> Callable[..., tuple[APIKey, str]]:
    """make_key({"contacts": ["view"]}, name=...) -> (key, full key string)."""

    def make(scopes: dict[str, list[str]] | None = None, **kwargs: Any) -> tuple[APIKey, str]:
        kwargs.setdefault("name", "Test key")
        generated = services.key_generate(
            scopes=scopes or {"contacts": ["view"]}, actor=actor, **kwargs
        )
        return generated.key, generated.full_key

    return make


@pytest.fixture
def api() -> APIClient:
    return APIClient()


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
