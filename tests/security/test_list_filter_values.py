"""Every list filter of every admin list refuses a value it cannot use with the 400 page naming
the parameter (README: "a value its filter cannot use gets a 400 page"), never the unfiltered
list as if the filter had been applied."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.filters import AllValuesFieldListFilter
from django.test import RequestFactory
from django.urls import reverse

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db

BOGUS = "zzz-bogus"


def every_filter_parameter(user: Any) -> list[tuple[str, str]]:
    """(changelist URL, parameter) for each parameter of each list filter of each admin list."""
    found = []
    for model, model_admin in admin.site._registry.items():
        if not model_admin.list_filter:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        request = RequestFactory().get(url)
        request.user = user
        changelist = model_admin.get_changelist_instance(request)
        for spec in changelist.filter_specs:
            if isinstance(spec, AllValuesFieldListFilter):
                continue  # free text (a contact's country): no value is malformed
            for param in spec.expected_parameters():
                found.append((url, param))
    return found


def test_every_list_filter_refuses_a_bogus_value(
    admin_client: Any, admin_user: Any, make_key: Any
) -> None:
    make_key()  # an audit entry, so the actor filter is shown (and walked)
    assert AuditEntry.objects.exists()
    walked = every_filter_parameter(admin_user)
    urls = {url for url, _ in walked}
    for name in ("keys_apikey", "keys_alert", "audit_auditentry", "crm_lead"):
        assert reverse(f"admin:{name}_changelist") in urls
    params = {param for _, param in walked}
    assert {"status", "usage", "owner", "expiring", "state", "actor"} <= params
    assert {"kind__exact", "action__exact", "created_at__gte"} <= params
    for url, param in walked:
        response = admin_client.get(url, {param: BOGUS})
        assert response.status_code == 400, (url, param, response.status_code)
        html = response.content.decode()
        assert f"“{param}”" in html, (url, param)
        assert "Show the unfiltered list" in html


@pytest.mark.parametrize(
    ("url", "param", "says"),
    [
        ("admin:keys_apikey_changelist", "status", "“active”, “expired”, “revoked”"),
        ("admin:keys_apikey_changelist", "usage", "“unused30”, “never”"),
        ("admin:keys_apikey_changelist", "owner", "“mine”"),
        ("admin:keys_alert_changelist", "kind", "“high_volume”"),
        ("admin:keys_alert_changelist", "kind__in", "“high_volume”"),
        ("admin:audit_auditentry_changelist", "action", "“generated”"),
    ],
)
def test_the_400_page_says_which_values_the_filter_takes(
    admin_client: Any, url: str, param: str, says: str
) -> None:
    response = admin_client.get(reverse(url), {param: "abc"})
    assert response.status_code == 400
    assert says in response.content.decode()


def test_good_values_still_filter(admin_client: Any, make_key: Any) -> None:
    make_key(name="Listed")
    url = reverse("admin:keys_apikey_changelist")
    for params in ({"status": "active"}, {"usage": "never"}, {"owner": "none"}):
        response = admin_client.get(url, params)
        assert response.status_code == 200 and "Listed" in response.content.decode()
    audit = reverse("admin:audit_auditentry_changelist")
    assert admin_client.get(audit, {"actor": "test-admin"}).status_code == 200
    assert admin_client.get(audit, {"action__exact": "generated"}).status_code == 200
