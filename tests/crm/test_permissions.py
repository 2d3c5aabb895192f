"""A CRM module's actions are the Django permissions of its model: the people who hold them and
the keys they grant share one model (view, add = create, change = edit, delete, export)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from crm.models import Contact, Lead
from crm.modules import ACTIONS, MODULES, scope_of_permission

pytestmark = pytest.mark.django_db

EXPECTED = {"view": "view", "create": "add", "edit": "change", "delete": "delete"}


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("action", ACTIONS)
def test_every_module_action_is_a_permission_of_its_model(module: str, action: str) -> None:
    perm = MODULES[module].permission(action)
    app_label, codename = perm.split(".")
    model = {"contacts": "contact", "leads": "lead", "opportunities": "opportunity"}[module]
    assert codename == f"{EXPECTED.get(action, action)}_{model}"
    assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists()
    assert scope_of_permission(app_label, codename) == (module, action)


def test_export_is_its_own_permission_with_a_readable_name() -> None:
    perm = Permission.objects.get(content_type__app_label="crm", codename="export_contact")
    assert perm.name == "Can export contact"
    assert scope_of_permission("crm", "view_apikey") is None
    assert scope_of_permission("keys", "view_contact") is None


def export(client: Any, *pks: int) -> Any:
    return client.post(
        reverse("admin:crm_contact_changelist"),
        {"action": "export_selected", "_selected_action": [str(pk) for pk in pks]},
    )


def test_the_crm_admin_offers_export_only_to_people_who_hold_it(staff_client: Any) -> None:
    contact = Contact.objects.create(first_name="Ada", last_name="Lovelace", email="=cmd|x")
    viewer = staff_client("crm.view_contact")
    page = viewer.get(reverse("admin:crm_contact_changelist")).content.decode()
    assert "export_selected" not in page
    response = export(viewer, contact.pk)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")  # the list again, nothing exported

    exporter = staff_client("crm.view_contact", "crm.export_contact")
    page = exporter.get(reverse("admin:crm_contact_changelist")).content.decode()
    assert "Export selected contacts as CSV" in page
    response = export(exporter, contact.pk)
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.splitlines()
    assert lines[0].startswith("id,first_name,last_name,email")
    assert "Lovelace" in lines[1]
    assert "'=cmd|x" in lines[1]  # a spreadsheet formula made inert, as in the API export


def test_crm_admin_pages_honour_the_same_permissions(staff_client: Any) -> None:
    lead = Lead.objects.create(first_name="Grace", last_name="Hopper")
    viewer = staff_client("crm.view_lead")
    assert viewer.get(reverse("admin:crm_lead_change", args=[lead.pk])).status_code == 200
    assert viewer.get(reverse("admin:crm_lead_add")).status_code == 403
    response = viewer.post(
        reverse("admin:crm_lead_change", args=[lead.pk]),
        {"first_name": "Changed", "last_name": "Hopper", "source": "website", "status": "new"},
    )
    assert response.status_code == 403
    lead.refresh_from_db()
    assert lead.first_name == "Grace"


def test_demo_roles_are_groups_of_crm_permissions() -> None:
    import io

    from django.core.management import call_command

    from keys.scopes import role_scopes

    call_command("seed_demo", "--contacts", "4", "--force", stdout=io.StringIO())
    call_command("seed_demo", "--contacts", "4", "--force", stdout=io.StringIO())  # idempotent
    roles = role_scopes()
    assert roles["Sales"] == {
        "contacts": ["view", "create", "edit"],
        "leads": ["view", "create", "edit"],
    }
    assert roles["Analysts"] == {m: ["view", "export"] for m in MODULES}
