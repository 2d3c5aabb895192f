"""Admin > API Keys through the admin's public surface (the test client)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from keys import crypto, services
from keys.models import Alert, AlertKind, APIKey, UsageHour
from keys.usage import flush, stats
from tests.helpers import bearer, form_nonce, generate_data

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:keys_apikey_changelist")
ADD_URL = reverse("admin:keys_apikey_add")


def change_url(key: APIKey) -> str:
    return reverse("admin:keys_apikey_change", args=[key.pk])


def rotate_url(key: APIKey) -> str:
    return reverse("admin:keys_apikey_rotate", args=[key.pk])


def revoke_url(key: APIKey) -> str:
    return reverse("admin:keys_apikey_revoke", args=[key.pk])


def assert_no_store(response: Any) -> None:
    assert "no-store" in response["Cache-Control"]
    assert response["X-Frame-Options"] == "DENY"


def generate(client: Any, **overrides: Any) -> Any:
    nonce = form_nonce(client.get(ADD_URL).content.decode())
    return client.post(ADD_URL, generate_data(nonce, **overrides))


def shown_key(response: Any) -> str:
    html = response.content.decode()
    keys = set(crypto_key_re().findall(html))
    assert len(keys) == 1, keys
    return keys.pop()


def crypto_key_re() -> Any:
    import re

    return re.compile(r"icrm_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}")


# --- Navigation and list ----------------------------------------------------------------------


def test_index_is_branded_and_lists_api_keys_and_audit_log(admin_client: Any) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert "Intellicon CRM Admin" in html
    assert "API Keys" in html
    assert LIST_URL in html
    assert reverse("admin:audit_auditentry_changelist") in html


def test_list_shows_columns_badges_and_generate_button(admin_client: Any, make_key: Any) -> None:
    active, _ = make_key(name="BI Tool Access")
    revoked, _ = make_key(name="Old Zapier")
    services.key_revoke(key=revoked, actor=services_actor())
    soon, _ = make_key(name="Short lived", expiry_policy="custom", expiry_date=tomorrow())
    UsageHour.objects.create(
        key=active, hour=this_hour(), endpoint="GET /api/v1/contacts/", requests=1234
    )
    response = admin_client.get(LIST_URL)
    html = response.content.decode()
    for column in ("Name", "Key", "Created", "Expires", "Last used", "Status", "Requests (24h)"):
        assert column in html
    assert "Generate API Key" in html
    assert "Add API key" not in html
    assert active.display_id in html
    assert 'key-badge--active">Active' in html
    assert 'key-badge--revoked">Revoked' in html
    assert "1,234" in html
    assert "key-expiry--soon" in html and soon.name in html
    assert "Revoke selected keys" in html
    assert "delete_selected" not in html


def test_status_filter_is_computed_from_timestamps(
    admin_client: Any, admin_user: Any, make_key: Any, time_machine: Any
) -> None:
    make_key(name="Expires soon", expiry_policy="30d")
    make_key(name="Keeper", expiry_policy="never")
    time_machine.move_to(timezone.now() + timedelta(days=31))
    admin_client.force_login(admin_user)  # the old session expired meanwhile
    expired = admin_client.get(LIST_URL, {"status": "expired"}).content.decode()
    active = admin_client.get(LIST_URL, {"status": "active"}).content.decode()
    assert "Expires soon" in expired and "Keeper" not in expired
    assert "Keeper" in active and "Expires soon" not in active


def test_expiring_and_unused_filters(
    admin_client: Any, admin_user: Any, make_key: Any, time_machine: Any
) -> None:
    make_key(name="Old unused", expiry_policy="never")
    time_machine.move_to(timezone.now() + timedelta(days=40))
    admin_client.force_login(admin_user)
    make_key(name="Fresh", expiry_policy="custom", expiry_date=tomorrow())
    unused = admin_client.get(LIST_URL, {"usage": "unused30"}).content.decode()
    assert "Old unused" in unused and ">Fresh<" not in unused
    expiring = admin_client.get(LIST_URL, {"expiring": "7d"}).content.decode()
    assert ">Fresh<" in expiring and "Old unused" not in expiring


def test_search_by_name_description_and_display_id(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key(name="Zapier Connector", description="owned by ops")
    make_key(name="Other")
    for term in ("zapier", "owned by", key.display_id):
        html = admin_client.get(LIST_URL, {"q": term}).content.decode()
        assert "Zapier Connector" in html and ">Other<" not in html, term


@pytest.mark.parametrize("count", [5, 50])
def test_list_query_count_is_constant(
    admin_client: Any, make_key: Any, django_assert_max_num_queries: Any, count: int
) -> None:
    for i in range(count):
        key, _ = make_key(name=f"Key {i}")
        UsageHour.objects.create(key=key, hour=this_hour(), endpoint="GET /x/", requests=i)
        Alert.objects.create(key=key, kind=AlertKind.UNUSED, measured_value=31, threshold=30)
    admin_client.get(LIST_URL)  # warm the session/user caches
    with django_assert_max_num_queries(8):
        response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    assert response.content.decode().count('class="key-id"') >= count


# --- Generate and show once -------------------------------------------------------------------


def test_generate_page(admin_client: Any) -> None:
    response = admin_client.get(ADD_URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'Never <span class="key-warn-text">(not recommended)</span>' in html
    assert 'value="90d" id="id_expiry_policy_2" required checked' in html
    assert 'type="date"' in html
    for preset in ("Website contact form", "BI/reporting tool", "Marketing automation"):
        assert preset in html
    assert "Full integration" in html and "use sparingly" in html
    assert "least" in html and "privilege" in html
    # One labelled checkbox per module x action.
    assert html.count('class="scope-cell"') == 15
    assert "Contacts: Create" in html
    assert_no_store(response)


def test_generate_shows_the_key_once_and_stores_only_its_hash(admin_client: Any, api: Any) -> None:
    response = generate(admin_client)
    assert response.status_code == 200
    assert_no_store(response)
    full = shown_key(response)
    html = response.content.decode()
    assert "shown only once" in html and "cannot be retrieved" in html
    assert "revoke it and generate a new one" in html
    assert "readonly" in html and "Copy" in html
    assert 'curl -H "Authorization: Bearer $CRM_API_KEY" http://testserver/api/v1/' in html
    key = APIKey.objects.get()
    assert key.key_hash == crypto.hash_key(full)
    assert key.created_by_label == "admin"
    # Nowhere but the response: not in the session, the messages or any DB row.
    for session in Session.objects.all():
        assert full not in str(session.get_decoded())
    assert full not in str(list(APIKey.objects.values()))
    assert full not in str(list(AuditEntry.objects.values()))
    assert not response.cookies or all(full not in c.value for c in response.cookies.values())
    # ...and it works against the API with exactly its scope.
    assert (
        api.post(
            "/api/v1/contacts/",
            {"first_name": "A", "last_name": "B"},
            format="json",
            **bearer(full),
        ).status_code
        == 201
    )
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 403


def test_reloading_or_resubmitting_creates_no_second_key(admin_client: Any) -> None:
    nonce = form_nonce(admin_client.get(ADD_URL).content.decode())
    first = admin_client.post(ADD_URL, generate_data(nonce))
    shown_key(first)
    second = admin_client.post(ADD_URL, generate_data(nonce))
    html = second.content.decode()
    assert "already submitted" in html and "shown once" in html
    assert not crypto_key_re().search(html)
    assert_no_store(second)
    assert APIKey.objects.count() == 1
    # The list page never shows it either.
    assert not crypto_key_re().search(admin_client.get(LIST_URL).content.decode())


def test_unknown_nonce_is_refused(admin_client: Any) -> None:
    admin_client.get(ADD_URL)
    response = admin_client.post(ADD_URL, generate_data("forged"))
    assert "This form has expired" in response.content.decode()
    assert APIKey.objects.count() == 0


def test_custom_date_may_be_today_never_in_the_past(admin_client: Any) -> None:
    yesterday = timezone.localdate() - timedelta(days=1)
    response = generate(admin_client, expiry_policy="custom", expiry_date=yesterday.isoformat())
    assert "cannot be in the past" in response.content.decode()
    assert APIKey.objects.count() == 0
    response = generate(admin_client, expiry_policy="custom", expiry_date=tomorrow().isoformat())
    shown_key(response)
    assert timezone.localtime(APIKey.objects.get().expires_at).date() == tomorrow() + timedelta(
        days=1
    )


@pytest.mark.parametrize(
    ("policy", "days"), [("never", None), ("30d", 30), ("90d", 90), ("1y", 365)]
)
def test_expiry_choices(admin_client: Any, policy: str, days: int | None) -> None:
    shown_key(generate(admin_client, expiry_policy=policy))
    key = APIKey.objects.get()
    if days is None:
        assert key.expires_at is None
    else:
        assert abs((key.expires_at - timezone.now()) - timedelta(days=days)) < timedelta(minutes=1)


def test_key_without_permissions_is_refused(admin_client: Any) -> None:
    response = generate(admin_client, scopes__contacts__create=None)
    html = response.content.decode()
    assert "at least one permission" in html
    assert APIKey.objects.count() == 0
    # The re-rendered form carries a fresh token, so correcting it works.
    retry = admin_client.post(ADD_URL, generate_data(form_nonce(html)))
    shown_key(retry)


def test_generate_with_a_custom_matrix(admin_client: Any) -> None:
    response = generate(
        admin_client,
        scopes__contacts__create=None,
        scopes__leads__view="on",
        scopes__leads__edit="on",
        scopes__opportunities__export="on",
    )
    shown_key(response)
    assert APIKey.objects.get().scopes == {"leads": ["view", "edit"], "opportunities": ["export"]}


def test_name_is_required(admin_client: Any) -> None:
    response = generate(admin_client, name="  ")
    assert "The key needs a name." in response.content.decode()
    assert APIKey.objects.count() == 0


# --- Key page ---------------------------------------------------------------------------------


def test_key_page_shows_details_usage_alerts_and_audit_trail(
    admin_client: Any, make_key: Any
) -> None:
    key, _ = make_key(name="BI Tool Access", scopes={"contacts": ["view", "export"]})
    UsageHour.objects.create(
        key=key, hour=this_hour(), endpoint="GET /api/v1/contacts/", requests=40, errors=4
    )
    Alert.objects.create(
        key=key,
        kind=AlertKind.ERROR_SPIKE,
        measured_value=10,
        threshold=5,
        message="Error spike: 10.0% of 40 requests failed (4 errors) in the hour from …",
    )
    response = admin_client.get(change_url(key))
    html = response.content.decode()
    assert response.status_code == 200
    assert key.display_id in html
    assert "test-admin" in html  # created by
    assert 'key-badge--active">Active' in html
    assert "Total requests" in html and "40" in html
    assert "10%" in html  # error rate
    assert "GET /api/v1/contacts/" in html
    assert "Error spike: 10.0% of 40 requests failed" in html  # the alert's own sentence
    assert "Audit trail" in html and "Generated" in html
    assert reverse("admin:audit_auditentry_changelist") + f"?key_id={key.pk}" in html
    assert rotate_url(key) in html and revoke_url(key) in html
    assert 'name="scopes__contacts__view" id="id_scopes_contacts_view" value="on" checked' in html
    assert (
        "delete" not in reverse("admin:keys_apikey_change", args=[key.pk])
        or "deletelink" not in html
    )
    assert "deletelink" not in html


def test_editing_scopes_goes_through_the_service_and_takes_effect(
    admin_client: Any, make_key: Any, api: Any
) -> None:
    key, full = make_key(scopes={"contacts": ["view"]})
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 200
    assert api.get("/api/v1/leads/", **bearer(full)).status_code == 403
    response = admin_client.post(
        change_url(key),
        {
            "name": "Renamed",
            "description": key.description,
            "scopes__leads__view": "on",
            "alert_volume_per_hour": "",
            "alert_error_rate_percent": "",
            "alert_unused_days": "",
            "rate_limit_per_minute": "",
            "allowed_ips": "",
        },
    )
    assert response.status_code == 302
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 403
    assert api.get("/api/v1/leads/", **bearer(full)).status_code == 200
    scopes_entry = AuditEntry.objects.get(key_id=key.pk, action=AuditAction.SCOPES_CHANGED)
    assert scopes_entry.before == {"scopes": {"contacts": ["view"]}}
    assert scopes_entry.after == {"scopes": {"leads": ["view"]}}
    assert scopes_entry.actor_label == "admin"
    edited = AuditEntry.objects.get(key_id=key.pk, action=AuditAction.EDITED)
    assert edited.before == {"name": "Test key"} and edited.after == {"name": "Renamed"}


def test_edit_without_any_permission_is_a_form_error(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    response = admin_client.post(change_url(key), {"name": "x", "description": ""})
    assert response.status_code == 200
    assert "at least one permission" in response.content.decode()
    key.refresh_from_db()
    assert key.scopes == {"contacts": ["view"]}


def test_edit_validates_alert_and_ip_settings(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    response = admin_client.post(
        change_url(key),
        {
            "name": "x",
            "scopes__contacts__view": "on",
            "alert_error_rate_percent": "150",
            "allowed_ips": "not-an-ip",
        },
    )
    html = response.content.decode()
    assert "above 0 and at most 100" in html and "not an IP address" in html
    assert not AuditEntry.objects.filter(key_id=key.pk, action=AuditAction.EDITED).exists()


def test_revoked_key_page_is_read_only(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    services.key_revoke(key=key, actor=services_actor())
    response = admin_client.get(change_url(key))
    html = response.content.decode()
    assert "This key is revoked" in html
    assert 'type="checkbox"' not in html.split('id="apikey_form"')[1].split("key-panels")[0]
    assert 'class="scope-matrix scope-matrix--readonly"' in html
    assert rotate_url(key) not in html and revoke_url(key) not in html
    assert admin_client.post(change_url(key), {"name": "x"}).status_code == 403


# --- Revoke -----------------------------------------------------------------------------------


def test_revoke_confirmation_then_post_revokes(admin_client: Any, make_key: Any, api: Any) -> None:
    key, full = make_key()
    page = admin_client.get(revoke_url(key))
    html = page.content.decode()
    assert "Revoking a key is immediate and permanent." in html
    assert "Ensure you have updated the external system with a replacement key" in html
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 200  # GET changed nothing
    response = admin_client.post(revoke_url(key), {"reason": "compromised"})
    assert response.status_code == 302
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 401
    entry = AuditEntry.objects.get(key_id=key.pk, action=AuditAction.REVOKED)
    assert entry.actor_label == "admin" and "compromised" in entry.message
    # A second revoke (double click) lands where the first did, saying when and by whom.
    again = admin_client.post(revoke_url(key), {}, follow=True)
    assert again.redirect_chain == [(change_url(key), 302)]
    assert "is revoked: it was revoked on" in again.content.decode()
    assert AuditEntry.objects.filter(key_id=key.pk, action=AuditAction.REVOKED).count() == 1


def test_bulk_revoke_has_a_confirmation_page(admin_client: Any, make_key: Any, api: Any) -> None:
    (k1, f1), (k2, f2), (k3, f3) = make_key(name="a"), make_key(name="b"), make_key(name="c")
    data = {"action": "revoke_selected", "_selected_action": [k1.pk, k2.pk]}
    confirm = admin_client.post(LIST_URL, data)
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Revoking a key is immediate and permanent." in html
    assert k1.display_id in html and k2.display_id in html and k3.display_id not in html
    assert api.get("/api/v1/contacts/", **bearer(f1)).status_code == 200
    done = admin_client.post(LIST_URL, {**data, "post": "yes", "reason": "cleanup"})
    assert done.status_code == 302
    assert api.get("/api/v1/contacts/", **bearer(f1)).status_code == 401
    assert api.get("/api/v1/contacts/", **bearer(f2)).status_code == 401
    assert api.get("/api/v1/contacts/", **bearer(f3)).status_code == 200
    assert AuditEntry.objects.filter(action=AuditAction.REVOKED).count() == 2


def test_keys_cannot_be_deleted(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    delete_url = reverse("admin:keys_apikey_delete", args=[key.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    response = admin_client.post(
        LIST_URL, {"action": "delete_selected", "_selected_action": [key.pk], "post": "yes"}
    )
    assert APIKey.objects.filter(pk=key.pk).exists()
    assert response.status_code in (200, 302)


# --- Rotate -----------------------------------------------------------------------------------


def test_rotate_confirmation_then_show_once(admin_client: Any, make_key: Any, api: Any) -> None:
    key, old_full = make_key(scopes={"contacts": ["view"]})
    page = admin_client.get(rotate_url(key))
    html = page.content.decode()
    assert "A new key value is generated with the same name, description, and permissions." in html
    assert "Both the old and new key work during this window." in html
    assert 'value="24h" id="id_grace_1" required checked' in html
    assert "1 hour" in html and "7 days" in html
    key.refresh_from_db()
    assert key.replaced_by_id is None  # GET changed nothing
    response = admin_client.post(rotate_url(key), {"form_nonce": form_nonce(html), "grace": "1h"})
    assert_no_store(response)
    new_full = shown_key(response)
    assert new_full != old_full
    key.refresh_from_db()
    assert key.replaced_by is not None
    assert abs(key.grace_ends_at - timezone.now() - timedelta(hours=1)) < timedelta(minutes=1)
    old = api.get("/api/v1/contacts/", **bearer(old_full))
    assert old.status_code == 200 and "Sunset" in old and "Deprecation" in old
    assert api.get("/api/v1/contacts/", **bearer(new_full)).status_code == 200
    # Resubmitting does not rotate again.
    again = admin_client.post(rotate_url(key), {"form_nonce": form_nonce(html), "grace": "1h"})
    assert "already submitted" in again.content.decode()
    assert APIKey.objects.count() == 2
    # Key page shows the chain both ways.
    assert "This is the old key of a rotation" in admin_client.get(change_url(key)).content.decode()
    assert (
        "New key value of a rotation"
        in admin_client.get(change_url(key.replaced_by)).content.decode()
    )


def test_rotate_refusal_is_a_message_not_a_500(admin_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    html = admin_client.get(rotate_url(key)).content.decode()
    services.key_revoke(key=key, actor=services_actor())
    response = admin_client.post(rotate_url(key), {"form_nonce": form_nonce(html), "grace": "24h"})
    assert response.status_code == 200
    assert "only an active key can be rotated" in response.content.decode()
    assert APIKey.objects.count() == 1


# --- Permissions ------------------------------------------------------------------------------


def test_staff_without_permissions_gets_403_everywhere(staff_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    client = staff_client()
    for url in (LIST_URL, ADD_URL, change_url(key), rotate_url(key), revoke_url(key)):
        assert client.get(url).status_code == 403, url
        assert client.post(url, {"form_nonce": "x", "grace": "1h"}).status_code == 403, url
    assert APIKey.objects.get(pk=key.pk).revoked_at is None


def test_view_only_staff_sees_no_buttons_and_cannot_act(staff_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    client = staff_client("keys.view_apikey")
    assert "Generate API Key" not in client.get(LIST_URL).content.decode()
    html = client.get(change_url(key)).content.decode()
    assert rotate_url(key) not in html and revoke_url(key) not in html
    assert 'type="checkbox"' not in html.split("key-panels")[0]
    assert client.get(ADD_URL).status_code == 403
    assert client.get(rotate_url(key)).status_code == 403
    assert client.post(revoke_url(key), {}).status_code == 403
    assert (
        client.post(change_url(key), {"name": "x", "scopes__contacts__view": "on"}).status_code
        == 403
    )
    assert "Revoke selected keys" not in client.get(LIST_URL).content.decode()
    response = client.post(
        LIST_URL, {"action": "revoke_selected", "_selected_action": [key.pk], "post": "yes"}
    )
    assert response.status_code in (200, 302)
    assert APIKey.objects.get(pk=key.pk).revoked_at is None


def test_rotate_and_revoke_permissions_are_separate(staff_client: Any, make_key: Any) -> None:
    key, _ = make_key()
    rotator = staff_client("keys.view_apikey", "keys.rotate_apikey")
    html = rotator.get(change_url(key)).content.decode()
    assert rotate_url(key) in html and revoke_url(key) not in html
    assert rotator.get(rotate_url(key)).status_code == 200
    assert rotator.get(revoke_url(key)).status_code == 403
    revoker = staff_client("keys.view_apikey", "keys.revoke_apikey")
    html = revoker.get(change_url(key)).content.decode()
    assert revoke_url(key) in html and rotate_url(key) not in html
    assert revoker.post(revoke_url(key), {}).status_code == 302
    assert APIKey.objects.get(pk=key.pk).revoked_at is not None


def test_generator_can_generate_what_they_hold(staff_client: Any) -> None:
    client = staff_client("keys.add_apikey", "crm.add_contact")
    shown_key(generate(client))


def test_forms_are_csrf_protected(admin_user: Any, make_key: Any) -> None:
    from django.test import Client

    key, _ = make_key()
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    for url in (ADD_URL, rotate_url(key), revoke_url(key), change_url(key), LIST_URL):
        assert client.post(url, {}).status_code == 403, url
    assert APIKey.objects.get(pk=key.pk).revoked_at is None


# --- helpers ----------------------------------------------------------------------------------


def services_actor() -> Any:
    from audit.actors import Actor

    return Actor(label="someone")


def tomorrow() -> Any:
    return timezone.localdate() + timedelta(days=1)


def this_hour() -> Any:
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def test_usage_csv_download_is_wired_on_the_key_page(
    admin_client: Any, staff_client: Any, make_key: Any
) -> None:
    key, _ = make_key()
    url = reverse("admin:keys_apikey_usage_csv", args=[key.pk])
    assert url in admin_client.get(change_url(key)).content.decode()
    response = admin_client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert staff_client().get(url).status_code == 403


def test_simultaneous_submissions_consume_the_token_once(rf: Any) -> None:
    """Two requests that loaded the session before either saved it (a double click served by
    two threads): the atomic cache.add lets only one of them through."""
    from django.contrib.sessions.backends.db import SessionStore

    from keys.admin.views import consume_form_nonce, issue_form_nonce

    first = rf.post("/")
    first.session = SessionStore()
    nonce = issue_form_nonce(first)
    first.session.save()
    second = rf.post("/")
    second.session = SessionStore(session_key=first.session.session_key)
    assert nonce in second.session["keys_admin_nonces_issued"]  # loaded before the consume
    assert consume_form_nonce(first, nonce) == "ok"
    assert consume_form_nonce(second, nonce) == "used"


@pytest.mark.django_db
def test_key_list_shows_requests_with_unknown_keys(admin_client, api):
    from keys import crypto

    flush.flush()  # earlier tests' bad keys may still sit in this process's buffer
    before = stats.unknown_key_requests()["requests_24h"]
    for _ in range(3):
        api.get("/api/v1/contacts/", HTTP_AUTHORIZATION=f"Bearer {crypto.make_key().full}")
    flush.flush()
    html = admin_client.get("/admin/keys/apikey/").content.decode()
    assert "Requests with an unknown or malformed key" in html
    assert f"<strong>{before + 3}</strong> in the last 24 hours" in html
