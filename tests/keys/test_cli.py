"""The apikey command, as ops use it."""

import io
import json
from datetime import date, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditEntry
from keys.models import APIKey, KeyStatus
from tests.helpers import bearer

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_create_prints_only_the_key_and_it_works(api):
    out, err = run(
        "create", "--name", "Zapier", "--scope", "contacts:view,create", "--scope", "leads:view"
    )
    assert out.startswith("icrm_") and len(out) == 56 and "\n" not in out
    assert "cannot be shown again" in err
    assert api.get("/api/v1/contacts/", **bearer(out)).status_code == 200
    assert api.get("/api/v1/leads/", **bearer(out)).status_code == 200
    assert api.get("/api/v1/opportunities/", **bearer(out)).status_code == 403
    key = APIKey.objects.get()
    assert key.scopes == {"contacts": ["view", "create"], "leads": ["view"]}
    assert AuditEntry.objects.get().actor_label.startswith("cli:")


def test_create_with_a_preset_and_custom_date():
    when = date.today() + timedelta(days=400)
    _out, _ = run("create", "--name", "BI", "--preset", "bi-tool", "--expires", when.isoformat())
    key = APIKey.objects.get()
    assert key.scopes == {
        "contacts": ["view", "export"],
        "leads": ["view", "export"],
        "opportunities": ["view", "export"],
    }
    assert key.expiry_policy == "custom"
    assert key.expires_at.date() == when + timedelta(days=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--name", "X", "--scope", "invoices:view"], "Unknown module"),
        (["create", "--name", "X", "--scope", "contacts:fly"], "Unknown action"),
        (["create", "--name", "X", "--scope", "contacts"], "not of the form"),
        (
            ["create", "--name", "X", "--scope", "contacts:view", "--expires", "2001-01-01"],
            "in the future",
        ),
        (
            ["create", "--name", "X", "--scope", "contacts:view", "--expires", "tomorrow"],
            "expected never",
        ),
        (["create", "--name", "  ", "--scope", "contacts:view"], "needs a name"),
        (["show", "nope"], "No API key"),
        (["revoke", "999999", "--yes"], "No API key"),
        (["scopes", "999", "--scope", "contacts:view"], "No API key"),
    ],
)
def test_errors_are_clear_and_non_zero(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not APIKey.objects.exists()


def test_errors_exit_non_zero_from_the_shell():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "apikey", "create", "--name", "X", "--scope", "nope:view"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "crm_keys.test_settings"},
        check=False,
    )
    assert result.returncode != 0
    assert "Unknown module" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_and_show_json(make_key):
    key, full = make_key({"leads": ["view"]}, name="Marketing", description="HubSpot sync")
    out, _ = run("list", "--json")
    rows = json.loads(out)
    assert rows[0]["public_id"] == key.public_id and rows[0]["status"] == "active"
    out, _ = run("show", key.public_id, "--json")
    data = json.loads(out)
    assert data["name"] == "Marketing" and data["scopes"] == {"leads": ["view"]}
    assert full not in out
    out, _ = run("list", "--search", "hubspot")
    assert "Marketing" in out
    out, _ = run("list", "--status", "revoked", "--json")
    assert json.loads(out) == []


def test_show_accepts_the_display_form(make_key):
    key, _ = make_key(name="Display")
    out, _ = run("show", f"icrm_{key.public_id}…")
    assert "Display" in out


def test_scopes_replaces_permissions(api, make_key):
    key, full = make_key({"contacts": ["view"]})
    run("scopes", str(key.pk), "--scope", "leads:view")
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 403
    assert api.get("/api/v1/leads/", **bearer(full)).status_code == 200


def test_revoke_needs_confirmation_without_a_terminal(make_key):
    key, _ = make_key()
    with pytest.raises(CommandError, match="--yes"):
        run("revoke", key.public_id)
    key.refresh_from_db()
    assert key.status == KeyStatus.ACTIVE


def test_revoke(api, make_key):
    key, full = make_key()
    out, _ = run("revoke", key.public_id, "--yes")
    assert "Revoked" in out
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 401


def test_revoke_leaked_key_by_value(api, make_key):
    key, full = make_key()
    run("revoke", "--leaked", full, "--yes")
    key.refresh_from_db()
    assert key.status == KeyStatus.REVOKED
    entry = AuditEntry.objects.filter(action="revoked").get()
    assert "reported leaked" in entry.message
    assert full not in entry.message


def test_revoke_leaked_with_an_unknown_key():
    from keys import crypto

    with pytest.raises(CommandError, match="No API key matches"):
        run("revoke", "--leaked", crypto.make_key().full, "--yes")
