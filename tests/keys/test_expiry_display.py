"""A custom expiry is shown as the date the admin chose, everywhere: "2027-01-15, end of day
UTC" on the show-once page, the key page, the list and the CLI (the key works through that day,
so it is stored as the next midnight; the API may keep the exact instant)."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from keys.models import APIKey
from tests.helpers import bearer, form_nonce, generate_data, page_text

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:keys_apikey_add")


def chosen() -> date:
    return timezone.localdate() + timedelta(days=50)


def generate_custom(admin_client: Any, day: date) -> str:
    nonce = form_nonce(admin_client.get(ADD_URL).content.decode())
    response = admin_client.post(
        ADD_URL, generate_data(nonce, expiry_policy="custom", expiry_date=day.isoformat())
    )
    assert response.status_code == 200
    return page_text(response.content.decode())


def test_show_once_key_page_and_list_show_the_chosen_day(admin_client: Any) -> None:
    day = chosen()
    text = f"{day.isoformat()}, end of day UTC"
    after = (day + timedelta(days=1)).isoformat()
    show_once = generate_custom(admin_client, day)
    assert text in show_once and after not in show_once
    key = APIKey.objects.get()
    key_page = page_text(
        admin_client.get(reverse("admin:keys_apikey_change", args=[key.pk])).content.decode()
    )
    assert text in key_page and after not in key_page
    listing = page_text(admin_client.get(reverse("admin:keys_apikey_changelist")).content.decode())
    assert text in listing and after not in listing
    # The key works through the chosen day and not a moment longer.
    assert timezone.localtime(key.expires_at).date() == day + timedelta(days=1)


def test_cli_show_and_list_show_the_chosen_day(make_key: Any) -> None:
    day = chosen()
    key, _ = make_key(name="BI", expiry_policy="custom", expiry_date=day)
    text = f"{day.isoformat()}, end of day UTC"
    for args in (["show", str(key.pk)], ["list"]):
        out = io.StringIO()
        call_command("apikey", *args, stdout=out)
        assert text in out.getvalue(), args
        assert (day + timedelta(days=1)).isoformat() not in out.getvalue(), args
    out = io.StringIO()
    call_command("apikey", "show", str(key.pk), "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["expires"] == text
    assert data["expires_at"] == key.expires_at.isoformat()  # the instant stays exact


def test_the_api_keeps_the_exact_instant(make_key: Any, api: Any) -> None:
    key, full = make_key(expiry_policy="custom", expiry_date=chosen())
    body = api.get("/api/v1/key/", **bearer(full)).json()
    assert body["expires_at"] == key.expires_at.isoformat()


def test_policy_expiries_show_their_instant_with_the_time_zone(make_key: Any) -> None:
    key, _ = make_key(expiry_policy="30d")
    local = timezone.localtime(key.expires_at)
    assert key.expiry_text() == local.strftime("%Y-%m-%d %H:%M ") + local.tzname()
    never, _ = make_key(expiry_policy="never")
    assert never.expiry_text() == "Never"
