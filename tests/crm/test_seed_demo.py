"""`manage.py seed_demo` (what `make run` loads): demo data for development only, and never a
change to an existing user."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

from keys.models import APIKey

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"icrm_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


def seed(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--contacts", "5", *args, stdout=out)
    return out.getvalue()


def test_refuses_to_run_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False
    with pytest.raises(CommandError, match=r"refuses to run with DEBUG off.*--force"):
        seed()
    assert not get_user_model().objects.exists()
    assert not APIKey.objects.exists()


def test_force_runs_it_with_debug_off(settings: Any) -> None:
    settings.DEBUG = False
    out = seed("--force")
    assert "username: admin  password: intellicon-demo" in out
    assert APIKey.objects.count() == 3


def test_first_run_prints_the_login_and_the_keys_last(settings: Any) -> None:
    settings.DEBUG = True
    lines = seed("--site-url", "http://127.0.0.1:8011").strip().splitlines()
    assert lines[0].startswith("CRM data: 5 contacts")
    assert (
        "Log in: http://127.0.0.1:8011/admin/  username: admin  password: intellicon-demo"
        in (lines[1])
    )
    assert len(KEY_RE.findall("\n".join(lines[2:]))) == 4  # three keys and the curl example
    assert lines[-1].startswith('Try: curl -H "Authorization: Bearer icrm_')
    assert lines[-1].endswith("http://127.0.0.1:8011/api/v1/contacts/")
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password("intellicon-demo")


def test_second_run_keeps_the_admins_password_and_sessions(settings: Any) -> None:
    settings.DEBUG = True
    seed()
    user = get_user_model().objects.get(username="admin")
    user.set_password("my own password")
    user.save()
    client = Client()
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    before = get_user_model().objects.get(pk=user.pk).password

    out = seed()

    assert get_user_model().objects.get(pk=user.pk).password == before
    assert client.get("/admin/").status_code == 200  # still logged in
    assert "intellicon-demo" not in out
    assert "password: (unchanged" in out
    assert "Demo API keys exist already" in out and not KEY_RE.search(out)


def test_an_existing_admin_user_is_never_promoted(settings: Any) -> None:
    settings.DEBUG = True
    user = get_user_model().objects.create_user("admin", password="whatever")
    out = seed()
    user.refresh_from_db()
    assert not user.is_superuser and not user.is_staff
    assert user.check_password("whatever")
    assert "cannot use the admin" in out and "intellicon-demo" not in out
