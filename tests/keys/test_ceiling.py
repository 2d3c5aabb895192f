"""The privilege ceiling: a person can grant a key only the permissions they hold themselves
(superusers hold all), on generate, on permission edits (adding; removing is always allowed)
and on rotation; the key records who granted it and who owns it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from keys import services
from keys.models import APIKey
from keys.scopes import held_by
from tests.helpers import bearer, form_nonce, generate_data, person, role

pytestmark = pytest.mark.django_db

KEY_ADMIN = ("keys.view_apikey", "keys.add_apikey", "keys.change_apikey", "keys.rotate_apikey")
ADD_URL = reverse("admin:keys_apikey_add")


def as_person(user: Any) -> Actor:
    return Actor(label=user.get_username(), user=user, ip="127.0.0.1")


@pytest.fixture
def sales() -> Any:
    """Holds Contacts view/create and, through the Sales role, Leads view."""
    user = person("sam", *KEY_ADMIN, "crm.view_contact", "crm.add_contact")
    user.groups.add(role("Sales", "crm.view_lead"))
    return user


def test_what_a_person_holds_is_a_set_of_scopes(sales: Any, admin_user: Any) -> None:
    assert held_by(sales) == {"contacts": ["view", "create"], "leads": ["view"]}
    assert held_by(admin_user) == {
        m: ["view", "create", "edit", "delete", "export"]
        for m in ("contacts", "leads", "opportunities")
    }
    sales.is_active = False
    assert held_by(sales) == {}


def test_generate_within_the_ceiling_records_grantor_and_owner(sales: Any, api: Any) -> None:
    generated = services.key_generate(
        name="Form", scopes={"contacts": ["create"], "leads": ["view"]}, actor=as_person(sales)
    )
    key = APIKey.objects.get(pk=generated.key.pk)
    assert (key.owner, key.granted_by, key.created_by) == (sales, sales, sales)
    assert key.granted_by_label == "sam"
    assert api.get("/api/v1/leads/", **bearer(generated.full_key)).status_code == 200
    entry = AuditEntry.objects.get(action=AuditAction.GENERATED)
    assert entry.actor_label == "sam" and entry.after["owner"] == "sam"


def test_generate_beyond_the_ceiling_names_what_is_lacking(sales: Any) -> None:
    with pytest.raises(services.KeyValidationError) as refused:
        services.key_generate(
            name="Too much",
            scopes={"contacts": ["view", "delete", "export"], "opportunities": ["view"]},
            actor=as_person(sales),
        )
    assert refused.value.errors["scopes"] == [
        "A person can grant a key only the permissions they hold themselves; sam does not "
        "hold Contacts: Delete, Export · Opportunities: View."
    ]
    assert not APIKey.objects.exists()
    assert not AuditEntry.objects.exists()


def test_superusers_and_the_system_operator_are_not_capped(admin_user: Any) -> None:
    full = {m: ["view", "create", "edit", "delete", "export"] for m in ("contacts", "leads")}
    services.key_generate(name="Admin", scopes=full, actor=as_person(admin_user))
    services.key_generate(name="Ops", scopes=full, actor=Actor.cli())
    assert APIKey.objects.count() == 2


def test_a_person_without_the_generate_permission_is_refused() -> None:
    user = person("crm-only", "crm.view_contact")
    with pytest.raises(services.KeyPermissionError, match="may not generate API keys"):
        services.key_generate(name="X", scopes={"contacts": ["view"]}, actor=as_person(user))


def test_edits_may_remove_anything_but_add_only_what_is_held(sales: Any, admin_user: Any) -> None:
    key = services.key_generate(
        name="Wide",
        scopes={"contacts": ["view", "delete"], "leads": ["view"]},
        actor=as_person(admin_user),
    ).key
    # Removing a permission sam lacks (contacts:delete) is allowed; keeping leads:view too.
    key = services.key_update_scopes(
        key=key, scopes={"contacts": ["view"], "leads": ["view"]}, actor=as_person(sales)
    )
    assert key.scopes == {"contacts": ["view"], "leads": ["view"]}
    assert key.granted_by == admin_user  # nothing was added: the grant still stands on admin's
    with pytest.raises(services.KeyValidationError, match="does not hold Leads: Edit"):
        services.key_update_scopes(
            key=key,
            scopes={"contacts": ["view"], "leads": ["view", "edit"]},
            actor=as_person(sales),
        )
    key = services.key_update_scopes(
        key=key, scopes={"contacts": ["view", "create"]}, actor=as_person(sales)
    )
    assert (key.granted_by, key.granted_by_label) == (sales, "sam")


def test_rotation_needs_every_permission_of_the_key(sales: Any, admin_user: Any) -> None:
    wide = services.key_generate(
        name="Wide", scopes={"opportunities": ["view"]}, actor=as_person(admin_user)
    ).key
    with pytest.raises(services.KeyValidationError, match="does not hold Opportunities: View"):
        services.key_rotate(key=wide, grace=timedelta(hours=1), actor=as_person(sales))
    assert APIKey.objects.count() == 1
    narrow = services.key_generate(
        name="Narrow", scopes={"contacts": ["view"]}, actor=as_person(admin_user)
    ).key
    rotated = services.key_rotate(key=narrow, grace=timedelta(hours=1), actor=as_person(sales))
    new = APIKey.objects.get(pk=rotated.key.pk)
    assert (new.owner, new.granted_by, new.created_by) == (admin_user, sales, sales)


def test_owner_must_be_active_and_changes_are_audited(sales: Any, admin_user: Any) -> None:
    gone = person("gone", is_active=False)
    with pytest.raises(services.KeyValidationError, match="gone is deactivated"):
        services.key_generate(
            name="X", scopes={"contacts": ["view"]}, owner=gone, actor=as_person(admin_user)
        )
    key = services.key_generate(
        name="X", scopes={"contacts": ["view"]}, actor=as_person(admin_user)
    ).key
    services.key_update(key=key, data={"owner": sales}, actor=as_person(admin_user))
    entry = AuditEntry.objects.get(action=AuditAction.EDITED)
    assert (entry.before, entry.after) == ({"owner": "admin"}, {"owner": "sam"})


# --- the admin ---------------------------------------------------------------------------------


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_generate_page_refuses_what_the_person_lacks_with_a_form_error(sales: Any) -> None:
    client = logged_in(sales)
    page = client.get(ADD_URL).content.decode()
    assert 'id="id_scopes_contacts_delete" value="on" disabled' in page
    assert 'id="id_scopes_contacts_create" value="on">' in page
    nonce = form_nonce(page)
    response = client.post(
        ADD_URL,
        generate_data(nonce, scopes__contacts__delete="on", scopes__leads__export="on"),
    )
    html = response.content.decode()
    assert "does not hold Contacts: Delete · Leads: Export" in html
    assert not APIKey.objects.exists()
    response = client.post(ADD_URL, generate_data(form_nonce(html)))
    assert "icrm_" in response.content.decode()
    key = APIKey.objects.get()
    assert (key.owner, key.granted_by) == (sales, sales)


def test_presets_and_roles_are_capped_by_the_ceiling(sales: Any) -> None:
    role("Analysts", "crm.view_contact", "crm.export_contact", "crm.view_lead")
    page = logged_in(sales).get(ADD_URL).content.decode()
    # "Same as role…" offers the role's CRM permissions, minus what sam does not hold.
    assert "Same as role" in page
    assert (
        'data-scopes="{&quot;contacts&quot;: [&quot;view&quot;], &quot;leads&quot;: [&quot;view&quot;]}"'
        in page
    )
    assert 'data-capped="Contacts: Export"' in page
    # The Full integration preset fills only what sam holds.
    assert (
        'data-capped="Contacts: Edit, Delete, Export · Leads: Create, Edit, Delete, Export' in page
    )


def test_key_page_edit_beyond_the_ceiling_is_a_form_error(sales: Any, admin_user: Any) -> None:
    key = services.key_generate(
        name="Admin's", scopes={"contacts": ["view", "delete"]}, actor=as_person(admin_user)
    ).key
    client = logged_in(sales)
    url = reverse("admin:keys_apikey_change", args=[key.pk])
    page = client.get(url).content.decode()
    # Granted already, so sam may untick it (removing is allowed), though he could not grant it.
    assert 'id="id_scopes_contacts_delete" value="on" checked>' in page
    assert 'id="id_scopes_contacts_export" value="on" disabled' in page
    form = {"name": "Admin's", "description": "", "owner": admin_user.pk}
    response = client.post(
        url, {**form, "scopes__contacts__view": "on", "scopes__leads__edit": "on"}
    )
    assert response.status_code == 200
    assert "does not hold Leads: Edit" in response.content.decode()
    response = client.post(url, {**form, "scopes__contacts__view": "on", "owner": sales.pk})
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.scopes == {"contacts": ["view"]} and key.owner == sales


def test_my_keys_filter(sales: Any, admin_user: Any) -> None:
    services.key_generate(name="Sam's", scopes={"contacts": ["view"]}, actor=as_person(sales))
    services.key_generate(
        name="Admin's", scopes={"contacts": ["view"]}, actor=as_person(admin_user)
    )
    html = logged_in(sales).get(reverse("admin:keys_apikey_changelist") + "?owner=mine")
    text = html.content.decode()
    assert "Sam&#x27;s" in text and "Admin&#x27;s" not in text
    assert "My keys" in text


def test_rotate_page_says_upfront_when_the_person_lacks_a_permission_of_the_key(
    sales: Any, admin_user: Any
) -> None:
    key = services.key_generate(
        name="Wide", scopes={"opportunities": ["view"]}, actor=as_person(admin_user)
    ).key
    url = reverse("admin:keys_apikey_rotate", args=[key.pk])
    client = logged_in(sales)
    html = client.get(url).content.decode()
    assert "sam does not hold Opportunities: View" in html
    assert 'value="Rotate"' not in html
    # A forged POST (with a token from a key sam may rotate) is refused by the service.
    narrow = services.key_generate(
        name="Narrow", scopes={"contacts": ["view"]}, actor=as_person(admin_user)
    ).key
    nonce = form_nonce(
        client.get(reverse("admin:keys_apikey_rotate", args=[narrow.pk])).content.decode()
    )
    html = client.post(url, {"form_nonce": nonce, "grace": "1h"}).content.decode()
    assert "sam does not hold Opportunities: View" in html
    assert APIKey.objects.count() == 2  # the two keys, no third
