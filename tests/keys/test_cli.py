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
            "cannot be in the past",
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


def test_a_missing_secret_key_is_one_line_not_a_traceback(tmp_path):
    """Production settings (DEBUG off) without SECRET_KEY: the command line says what to set."""
    import os
    import subprocess
    import sys

    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("SECRET_KEY", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE", "DATABASE_URL")
    }
    env.update(CRM_KEYS_VAR_DIR=str(tmp_path), CRM_KEYS_READ_DOTENV="0")
    for command in (["apikey", "--help"], ["apikey", "list"], ["migrate"]):
        result = subprocess.run(
            [sys.executable, "manage.py", *command],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("Error: SECRET_KEY is not set."), result.stderr


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


def test_list_explains_its_star_and_shows_no_expiry_for_a_revoked_key(make_key, actor):
    from keys import services

    old, _ = make_key(name="Zapier", expiry_policy="90d")
    services.key_rotate(key=old, grace=timedelta(hours=1), actor=actor)
    gone, _ = make_key(name="Retired", expiry_policy="90d")
    services.key_revoke(key=gone, actor=actor)
    out, _ = run("list")
    lines = out.splitlines()
    old_row = next(line for line in lines if line.lstrip().startswith(f"{old.pk} "))
    assert "active*" in old_row
    assert lines[-1].startswith("* ") and "grace period" in lines[-1], lines[-1]
    gone_row = next(line for line in lines if line.lstrip().startswith(f"{gone.pk} "))
    assert "revoked" in gone_row and "—" in gone_row
    gone.refresh_from_db()
    assert gone.expiry_text() not in gone_row
    # No star, no legend.
    out, _ = run("list", "--status", "revoked")
    assert "grace period" not in out


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


# --- ids: every id argument is validated (a clear line, never a traceback) ------------------


@pytest.mark.parametrize(
    "ref",
    ["²", "١٢", "-1", "1.5", "9" * 30, "\x00", "abc\x00def", "", "   ", "icrm_", "icrm_²", "💥"],
)
@pytest.mark.parametrize(
    "command",
    [
        ["show"],
        ["rotate"],
        ["revoke", "--yes"],
        ["scopes", "--scope", "contacts:view"],
        ["update", "--name", "X"],
    ],
)
def test_odd_ids_are_a_clear_error(make_key, command, ref):
    key, _ = make_key()
    with pytest.raises(CommandError, match=r"No API key|Give the key") as caught:
        run(command[0], ref, *command[1:])
    assert "\n" not in str(caught.value)
    key.refresh_from_db()
    assert key.status == KeyStatus.ACTIVE and key.name == "Test key"


def test_an_odd_id_from_the_shell_is_one_line_and_exit_1():
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "apikey", "show", "²"],
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "crm_keys.test_settings"},
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "No API key" in result.stderr


# --- parity with the key page: every setting from create and update -------------------------

SETTINGS_ARGS = [
    "--rate-limit",
    "2",
    "--allowed-ips",
    "10.0.0.0/8, 2001:db8::/32",
    "--alert-volume",
    "500",
    "--alert-error-rate",
    "2.5",
    "--alert-unused-days",
    "7",
    "--mute-alerts",
]


def test_create_sets_every_setting_of_the_key_page(api):
    full, _ = run("create", "--name", "Partner", "--scope", "contacts:view", *SETTINGS_ARGS)
    key = APIKey.objects.get()
    assert key.rate_limit_per_minute == 2
    assert key.allowed_ips == "10.0.0.0/8\n2001:db8::/32"
    assert (key.alert_volume_per_hour, key.alert_error_rate_percent, key.alert_unused_days) == (
        500,
        2.5,
        7,
    )
    assert key.alerts_muted is True
    # Enforced from the first request: the allowlist, then the rate limit.
    assert api.get("/api/v1/contacts/", REMOTE_ADDR="192.0.2.1", **bearer(full)).status_code == 403
    codes = [
        api.get("/api/v1/contacts/", REMOTE_ADDR="10.1.2.3", **bearer(full)).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    actions = AuditEntry.objects.filter(key_id=key.pk).exclude(action="access_denied")
    assert sorted(actions.values_list("action", flat=True)) == ["edited", "generated"]


def test_a_bad_setting_on_create_makes_no_key():
    with pytest.raises(CommandError, match="--allowed-ips: 'nope' is not an IP address"):
        run("create", "--name", "X", "--scope", "contacts:view", "--allowed-ips", "nope")
    assert not APIKey.objects.exists()
    assert not AuditEntry.objects.exists()


def test_update_changes_settings_and_is_audited(api, make_key):
    key, full = make_key({"contacts": ["view"]}, name="Old name")
    out, _ = run(
        "update",
        str(key.pk),
        "--name",
        "New name",
        "--description",
        "Owner: ops",
        "--scope",
        "leads:view",
        *SETTINGS_ARGS,
    )
    assert "New name" in out
    key.refresh_from_db()
    assert (key.name, key.description, key.scopes) == (
        "New name",
        "Owner: ops",
        {"leads": ["view"]},
    )
    assert key.rate_limit_per_minute == 2 and key.alerts_muted
    assert api.get("/api/v1/leads/", REMOTE_ADDR="10.0.0.1", **bearer(full)).status_code == 200
    edited = AuditEntry.objects.get(key_id=key.pk, action="edited")
    assert edited.before["name"] == "Old name" and edited.after["rate_limit_per_minute"] == 2
    assert AuditEntry.objects.filter(key_id=key.pk, action="scopes_changed").exists()
    # Back to the defaults.
    run(
        "update",
        key.public_id,
        "--rate-limit",
        "none",
        "--allowed-ips",
        "",
        "--alert-volume",
        "default",
        "--alert-error-rate",
        "default",
        "--alert-unused-days",
        "default",
        "--unmute-alerts",
    )
    key.refresh_from_db()
    assert key.rate_limit_per_minute is None and key.allowed_ips == ""
    assert key.alert_volume_per_hour is None and key.alert_error_rate_percent is None
    assert key.alert_unused_days is None and key.alerts_muted is False
    assert api.get("/api/v1/leads/", REMOTE_ADDR="192.0.2.9", **bearer(full)).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate-limit", "abc"], "--rate-limit: .*must be an integer"),
        (["--rate-limit", "0"], "--rate-limit: .*at least 1"),
        (["--rate-limit", "-5"], "--rate-limit: "),
        (["--alert-error-rate", "150"], "--alert-error-rate: .*above 0 and at most 100"),
        (["--alert-error-rate", "nan"], "--alert-error-rate: .*above 0 and at most 100"),
        (["--alert-error-rate", "0"], "--alert-error-rate: .*above 0 and at most 100"),
        (["--alert-unused-days", "0"], "--alert-unused-days: .*at least 1 day"),
        (["--alert-volume", "0"], "--alert-volume: .*at least 1 request per hour"),
        (["--alert-volume", "lots"], "--alert-volume: .*must be an integer"),
        (["--allowed-ips", "10.0.0.0/8,300.1.1.1"], "--allowed-ips: '300.1.1.1'"),
        (["--name", ""], "--name: The key needs a name"),
        (["--name", "a\x07b"], "--name: .*control characters"),
        (["--mute-alerts", "--unmute-alerts"], "not allowed with"),
        ([], "Nothing to change"),
    ],
)
def test_update_errors_name_the_option_and_change_nothing(make_key, args, message):
    key, _ = make_key(name="Keep")
    before = AuditEntry.objects.count()
    with pytest.raises(CommandError, match=message) as caught:
        run("update", str(key.pk), *args)
    assert "\n" not in str(caught.value)
    key.refresh_from_db()
    assert key.name == "Keep" and key.rate_limit_per_minute is None
    assert AuditEntry.objects.count() == before


def test_update_of_a_revoked_key_is_refused(make_key, actor):
    from keys import services

    key, _ = make_key()
    services.key_revoke(key=key, actor=actor)
    with pytest.raises(CommandError, match="revoked; it cannot be edited"):
        run("update", str(key.pk), "--name", "X")


def test_show_prints_every_setting(make_key):
    key, _ = make_key(name="Shown")
    run(
        "update",
        str(key.pk),
        "--rate-limit",
        "30",
        "--allowed-ips",
        "10.0.0.0/8",
        "--alert-volume",
        "500",
        "--mute-alerts",
    )
    out, _ = run("show", str(key.pk))
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in out.splitlines()
    }
    assert lines["rate limit"].startswith("30 requests per minute")
    assert lines["allowed IPs"] == "10.0.0.0/8"
    assert lines["alerts"] == "muted"
    assert lines["alert volume"] == "above 500 requests per hour"
    assert lines["alert error rate"] == "above 10.0% (default)"
    assert lines["alert unused"] == "after 30 days (default)"
    data = json.loads(run("show", str(key.pk), "--json")[0])
    assert data["rate_limit_per_minute"] == 30 and data["allowed_ips"] == ["10.0.0.0/8"]
    assert data["alerts"] == {
        "muted": True,
        "volume_per_hour": {"value": 500, "default": False},
        "error_rate_percent": {"value": 10.0, "default": True},
        "unused_days": {"value": 30, "default": True},
    }
