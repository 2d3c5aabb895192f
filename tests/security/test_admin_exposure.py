"""What a staff user can reach in the admin beyond their permissions: secret-derived fields
through filters, panels of other models on the key page, keys reachable through Rotate/Revoke
alone. Each test is an attack from the second security review, replayed."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditAction, AuditEntry
from keys.models import Alert, AlertKind, APIKey

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:keys_apikey_changelist")


def change_url(key: APIKey) -> str:
    return reverse("admin:keys_apikey_change", args=[key.pk])


# --- item 5: no lookups on key hashes --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "lookup"),
    [
        (LIST_URL, "key_hash__startswith"),
        (LIST_URL, "key_hash"),
        (LIST_URL, "key_hash__regex"),
        (LIST_URL, "replaced_by__key_hash__startswith"),
        (reverse("admin:keys_alert_changelist"), "key__key_hash__startswith"),
        (LIST_URL, "replaces__key_hash__startswith"),
    ],
)
def test_view_only_staff_cannot_filter_by_a_key_hash(
    staff_client: Any, make_key: Any, url: str, lookup: str
) -> None:
    """The review recovered a key's whole hash, a character at a time, from whether the
    filtered list still showed the key."""
    key, _ = make_key(name="Hash target")
    Alert.objects.create(key=key, kind=AlertKind.UNUSED, measured_value=31, threshold=30)
    client = staff_client("keys.view_apikey", "keys.view_alert")
    value = key.key_hash[:1] if "startswith" in lookup else key.key_hash
    response = client.get(url, {lookup: value if lookup != "key_hash__regex" else "^."})
    assert response.status_code == 400
    assert "Hash target" not in response.content.decode()


def test_filters_the_key_list_offers_still_work(staff_client: Any, make_key: Any) -> None:
    make_key(name="Still listed")
    client = staff_client("keys.view_apikey")
    response = client.get(LIST_URL, {"status": "active", "q": "Still"})
    assert response.status_code == 200 and "Still listed" in response.content.decode()


# --- item 7: the key page's panels follow their own permissions ------------------------------


def test_key_page_hides_audit_trail_and_alerts_without_their_view_permissions(
    staff_client: Any, make_key: Any
) -> None:
    key, _ = make_key(name="Panel key")
    Alert.objects.create(
        key=key,
        kind=AlertKind.ERROR_SPIKE,
        measured_value=50,
        threshold=10,
        message="Error spike: secret-ish operational detail",
    )
    viewer = staff_client("keys.view_apikey")
    assert viewer.get(reverse("admin:audit_auditentry_changelist")).status_code == 403
    assert viewer.get(reverse("admin:keys_alert_changelist")).status_code == 403
    html = viewer.get(change_url(key)).content.decode()
    assert "Panel key" in html
    assert "Audit trail" not in html and "test-admin" not in html.split("key-panels")[-1]
    assert "Open alerts" not in html and "secret-ish operational detail" not in html

    auditor = staff_client("keys.view_apikey", "audit.view_auditentry")
    html = auditor.get(change_url(key)).content.decode()
    assert "Audit trail" in html and "Generated" in html
    assert "Open alerts" not in html

    watcher = staff_client("keys.view_apikey", "keys.view_alert")
    html = watcher.get(change_url(key)).content.decode()
    assert "Open alerts" in html and "secret-ish operational detail" in html
    assert "Audit trail" not in html


# --- item 8: Rotate and Revoke alone reach no key --------------------------------------------


def test_rotate_only_user_can_neither_see_nor_rotate_a_key(
    staff_client: Any, make_key: Any
) -> None:
    key, _ = make_key(name="Payroll export")
    rotator = staff_client("keys.rotate_apikey")
    url = reverse("admin:keys_apikey_rotate", args=[key.pk])
    response = rotator.get(url)
    assert response.status_code == 403 and "Payroll export" not in response.content.decode()
    response = rotator.post(url, {"form_nonce": "x", "grace": "1h"})
    assert response.status_code == 403
    assert "icrm_" not in response.content.decode()
    assert APIKey.objects.count() == 1
    assert not AuditEntry.objects.filter(action=AuditAction.ROTATED).exists()


def test_revoke_only_user_cannot_revoke_a_key(staff_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Payroll export")
    revoker = staff_client("keys.revoke_apikey")
    url = reverse("admin:keys_apikey_revoke", args=[key.pk])
    assert revoker.get(url).status_code == 403
    assert revoker.post(url, {"reason": "mine now"}).status_code == 403
    response = revoker.post(
        LIST_URL, {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes"}
    )
    assert response.status_code == 403
    assert APIKey.objects.get(pk=key.pk).revoked_at is None


# --- item 12: odd filter values are refused clearly, never a 500 ---------------------------

AUDIT_URL = reverse("admin:audit_auditentry_changelist")
ALERT_URL = reverse("admin:keys_alert_changelist")


@pytest.mark.parametrize(
    ("url", "params", "says"),
    [
        (AUDIT_URL, {"actor": "\x00"}, "actor"),
        (AUDIT_URL, {"key_public_id": "\x00"}, "key_public_id"),
        (AUDIT_URL, {"key_id": "²"}, "key_id"),
        (AUDIT_URL, {"key_id": "9" * 40}, "key_id"),
        (AUDIT_URL, {"q": "a\x00b"}, "q"),
        (AUDIT_URL, {"actor": "x" * 5000}, "actor"),
        (AUDIT_URL, {"created_at__year": "9" * 30}, "created_at__year"),
        (AUDIT_URL, {"ip": "²"}, "ip"),
        (AUDIT_URL, {"ip__in": "10.0.0.1,nope"}, "ip__in"),
        (LIST_URL, {"q": "\x00"}, "q"),
        (LIST_URL, {"status": "\x1b[31m"}, "status"),
        (LIST_URL, {"name": "\x00"}, "name"),
        (ALERT_URL, {"kind": "\x00"}, "kind"),
        (reverse("admin:auth_user_changelist"), {"q": "\x00"}, "q"),
    ],
)
def test_odd_filter_values_get_a_clear_400(
    admin_client: Any, make_key: Any, url: str, params: dict[str, str], says: str
) -> None:
    make_key()
    response = admin_client.get(url, params)
    assert response.status_code == 400
    html = response.content.decode()
    assert f"“{says}”" in html  # names the parameter
    assert "Show the unfiltered list" in html


def test_the_key_filter_still_takes_ids_and_public_ids(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Filtered key")
    for params in ({"key_id": str(key.pk)}, {"key_public_id": key.display_id}):
        response = admin_client.get(AUDIT_URL, params)
        assert response.status_code == 200
        assert "Filtered key" in response.content.decode()
    response = admin_client.get(AUDIT_URL, {"key_public_id": "nosuchkey"})
    assert response.status_code == 200 and "Filtered key" not in response.content.decode()


def _param_names(url: str) -> list[str]:
    common = ["q", "o", "p", "e", "all", "_to_field", "_popup", "_changelist_filters", "id"]
    return (
        common
        + {
            AUDIT_URL: [
                "actor",
                "key_id",
                "key_public_id",
                "action__exact",
                "created_at__gte",
                "created_at__lt",
                "created_at__year",
                "created_at__month",
                "created_at__day",
                "seq",
                "ip",
                "message__icontains",
            ],
            LIST_URL: ["status", "expiring", "usage", "name", "public_id", "created_at__gte"],
            ALERT_URL: [
                "kind__exact",
                "resolved_at__isempty",
                "opened_at__gte",
                "opened_at__year",
                "key__id__exact",
            ],
        }[url]
    )


ODD_VALUES = st.sampled_from(
    [
        "\x00",
        "²",
        "٣",
        "-1",
        "1e9",
        "9" * 30,
        "\U0001d7d9",
        "' OR 1=1",
        "%00",
        "\u202e",
        " ",
        "x" * 400,
    ]
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    url=st.sampled_from([AUDIT_URL, LIST_URL, ALERT_URL]),
)
def test_fuzzed_admin_query_parameters_never_cause_a_500(admin_client: Any, data: Any, url: str):
    names = data.draw(st.lists(st.sampled_from(_param_names(url)), min_size=1, max_size=3))
    params = {name: data.draw(ODD_VALUES | st.text(max_size=40)) for name in names}
    response = admin_client.get(url, params)  # the test client re-raises what would be a 500
    assert response.status_code in (200, 302, 400), (url, params)
