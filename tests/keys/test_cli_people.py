"""The command line acts as a person with --as USERNAME: their permissions, their privilege
ceiling, and their name in the audit log. Without it, it is the system operator."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditAction, AuditEntry
from keys.models import APIKey, KeyStatus
from tests.helpers import person

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


@pytest.fixture
def sam() -> Any:
    return person(
        "sam",
        "keys.add_apikey",
        "keys.change_apikey",
        "keys.rotate_apikey",
        "crm.view_contact",
        "crm.add_contact",
    )


def test_create_as_a_person_is_capped_and_recorded(sam: Any) -> None:
    with pytest.raises(CommandError) as refused:
        run("create", "--as", "sam", "--name", "X", "--scope", "contacts:view,delete,export")
    assert "sam does not hold Contacts: Delete, Export" in str(refused.value)
    assert not APIKey.objects.exists()
    out, _ = run("create", "--as", "sam", "--name", "Form", "--scope", "contacts:create")
    assert out.startswith("icrm_")
    key = APIKey.objects.get()
    shown = json.loads(run("show", key.public_id, "--json")[0])
    assert (shown["owner"], shown["granted_by"]) == ("sam", "sam")
    assert (key.owner, key.granted_by, key.created_by) == (sam, sam, sam)
    entry = AuditEntry.objects.get()
    assert entry.actor_label == "sam" and entry.actor_user_id == sam.pk
    assert entry.user_agent.startswith("manage.py (cli:")


def test_without_as_the_cli_is_the_system_operator() -> None:
    run("create", "--name", "Ops", "--preset", "full")
    key = APIKey.objects.get()
    assert key.owner is None and key.granted_by_label.startswith("cli:")


def test_create_with_an_owner(sam: Any) -> None:
    run("create", "--name", "Ops", "--scope", "contacts:view", "--owner", "sam")
    assert APIKey.objects.get().owner == sam
    person("gone", is_active=False)
    with pytest.raises(CommandError, match="gone is deactivated"):
        run("create", "--name", "Ops", "--scope", "contacts:view", "--owner", "gone")


def test_scopes_as_a_person_may_remove_but_not_add_beyond(sam: Any) -> None:
    run("create", "--name", "Wide", "--scope", "contacts:view,delete")
    key = APIKey.objects.get()
    out, _ = run("scopes", key.public_id, "--as", "sam", "--scope", "contacts:view")
    assert "Contacts: View" in out
    with pytest.raises(CommandError, match="sam does not hold Leads: View"):
        run(
            "scopes",
            key.public_id,
            "--as",
            "sam",
            "--scope",
            "contacts:view",
            "--scope",
            "leads:view",
        )
    entry = AuditEntry.objects.filter(action=AuditAction.SCOPES_CHANGED).get()
    assert entry.actor_label == "sam"


def test_rotate_as_a_person_needs_every_permission_of_the_key(sam: Any) -> None:
    run("create", "--name", "Wide", "--scope", "contacts:view,export")
    key = APIKey.objects.get()
    with pytest.raises(CommandError, match="sam does not hold Contacts: Export"):
        run("rotate", key.public_id, "--as", "sam")
    run("scopes", key.public_id, "--scope", "contacts:view")
    out, _ = run("rotate", key.public_id, "--as", "sam")
    assert out.startswith("icrm_")
    assert APIKey.objects.get(replaces=key).granted_by == sam


def test_revoke_as_a_person_needs_the_revoke_permission(sam: Any) -> None:
    run("create", "--name", "K", "--scope", "contacts:view")
    key = APIKey.objects.get()
    with pytest.raises(CommandError, match="sam may not revoke API keys"):
        run("revoke", key.public_id, "--as", "sam", "--yes")
    revoker = person("rita", "keys.revoke_apikey")
    run("revoke", key.public_id, "--as", revoker.username, "--yes")
    key.refresh_from_db()
    assert key.status == KeyStatus.REVOKED and key.revoked_by_label == "rita"


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("nobody", "No user 'nobody'"),
        ("gone", "gone is deactivated"),
        ("a\x00b", "No user"),
        ("é" * 5000, "No user"),
    ],
)
def test_as_needs_an_existing_active_user(username: str, message: str) -> None:
    person("gone", "keys.add_apikey", is_active=False)
    with pytest.raises(CommandError, match=message):
        run("create", "--as", username, "--name", "X", "--scope", "contacts:view")
    assert not APIKey.objects.exists()
