"""The organisation's key policy: stored in the database, changed with an audit entry,
enforced by the services for the admin and the CLI alike; keys that break a policy made
stricter after they were generated are listed, never changed."""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction, AuditEntry
from keys import services
from keys.alerts import rules
from keys.models import AlertKind, APIKey, KeyPolicy
from tests.helpers import person

pytestmark = pytest.mark.django_db

OPS = Actor(label="ops")


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def create(*args: str) -> str:
    return run("create", "--name", "K", "--scope", "contacts:view", *args)


def test_policy_set_is_stored_shown_and_audited() -> None:
    out = run("policy", "set", "--max-lifetime", "90d", "--require-description")
    assert "Key policy updated." in out
    assert "maximum lifetime: 90 days" in out and "description: required" in out
    policy = KeyPolicy.objects.get()
    assert (policy.max_lifetime_days, policy.require_description) == (90, True)
    shown = json.loads(run("policy", "show", "--json"))
    assert shown["policy"]["max_lifetime_days"] == 90
    assert shown["policy"]["require_description"] is True
    entry = AuditEntry.objects.get(action=AuditAction.POLICY_CHANGED)
    assert entry.before == {"max_lifetime_days": None, "require_description": False}
    assert entry.after == {"max_lifetime_days": 90, "require_description": True}
    assert entry.actor_label.startswith("cli:") and entry.key_public_id == ""
    # The same values again change nothing and record nothing.
    run("policy", "set", "--max-lifetime", "90d", "--require-description")
    assert AuditEntry.objects.filter(action=AuditAction.POLICY_CHANGED).count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expires", "never", "--description", "x"], "at most 90 days: a key that never expires"),
        (["--expires", "1y", "--description", "x"], "at most 90 days: choose an expiry up to"),
        (
            ["--expires", (date.today() + timedelta(days=120)).isoformat(), "--description", "x"],
            "choose an expiry up to",
        ),
        (["--expires", "30d"], "requires a description"),
        (["--expires", "30d", "--description", "   "], "requires a description"),
    ],
)
def test_the_policy_refuses_long_lives_and_missing_descriptions(
    args: list[str], message: str
) -> None:
    run("policy", "set", "--max-lifetime", "90d", "--require-description")
    with pytest.raises(CommandError, match=message):
        create(*args)
    assert not APIKey.objects.exists()


def test_within_the_policy_and_its_default_expiry() -> None:
    run(
        "policy", "set", "--max-lifetime", "90d", "--require-description", "--default-expiry", "30d"
    )
    create("--description", "Zapier, owner: web team", "--expires", "90d")
    custom = date.today() + timedelta(days=90)
    create("--description", "BI", "--expires", custom.isoformat())
    create("--description", "No --expires: the policy's default")
    latest = APIKey.objects.order_by("-pk").first()
    assert latest.expiry_policy == "30d"
    assert abs((latest.expires_at - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)


def test_the_system_operator_and_superusers_are_held_to_the_policy_too(admin_user: Any) -> None:
    run("policy", "set", "--max-lifetime", "30d", "--default-expiry", "30d")
    with pytest.raises(services.KeyValidationError, match="never expires"):
        services.key_generate(
            name="X",
            scopes={"contacts": ["view"]},
            expiry_policy="never",
            actor=Actor(label="admin", user=admin_user),
        )


def test_a_default_longer_than_the_maximum_is_refused() -> None:
    with pytest.raises(
        CommandError, match=r"default expiry \(90 days\) is longer than the maximum"
    ):
        run("policy", "set", "--max-lifetime", "30d")
    assert KeyPolicy.current().max_lifetime_days is None
    run("policy", "set", "--max-lifetime", "30d", "--default-expiry", "30d")
    assert KeyPolicy.current().max_lifetime_days == 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-lifetime", "ninety"], "expected e.g. 90d"),
        (["--max-lifetime", "0d", "--default-expiry", "never"], "greater than or equal to 1"),
        (["--ip-allowlist-for", "delete,fly"], "Unknown action 'fly'"),
        ([], "Nothing to change"),
    ],
)
def test_policy_set_errors_are_clear(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run("policy", "set", *args)
    assert not AuditEntry.objects.exists()


def test_keys_breaking_a_tightened_policy_are_listed_not_changed() -> None:
    create("--expires", "never", "--description", "Forever")
    create("--expires", "1y")
    create("--expires", "30d", "--description", "Fine")
    before = {k.pk: (k.expires_at, k.description) for k in APIKey.objects.all()}
    out = run("policy", "set", "--max-lifetime", "90d", "--require-description")
    assert "2 active key(s) break the policy" in out
    assert "never expires" in out
    assert "lifetime 365 days (maximum 90 days); no description" in out
    assert {k.pk: (k.expires_at, k.description) for k in APIKey.objects.all()} == before
    breaches = json.loads(run("policy", "show", "--json"))["breaches"]
    assert [b["breaches"] for b in breaches] == [
        ["never expires"],
        ["lifetime 365 days (maximum 90 days)", "no description"],
    ]
    # Such a key can still be edited, but not made worse.
    forever, yearly = (APIKey.objects.get(pk=b["id"]) for b in breaches)
    services.key_update(key=yearly, data={"name": "Renamed"}, actor=OPS)
    with pytest.raises(services.KeyValidationError, match="requires a description"):
        services.key_update(key=forever, data={"description": ""}, actor=OPS)


def test_actions_that_require_an_ip_allowlist() -> None:
    run("policy", "set", "--ip-allowlist-for", "delete,export")
    with pytest.raises(
        CommandError, match=r"allowed IP ranges .* delete or export \(Contacts: Export"
    ):
        run("create", "--name", "BI", "--preset", "bi-tool")
    run("create", "--name", "BI", "--preset", "bi-tool", "--allowed-ips", "10.0.0.0/8,192.0.2.7")
    assert APIKey.objects.get().allowed_ips == "10.0.0.0/8\n192.0.2.7/32"
    plain = services.key_generate(name="Plain", scopes={"leads": ["view"]}, actor=OPS).key
    with pytest.raises(services.KeyValidationError, match=r"\(Leads: Delete\)"):
        services.key_update_scopes(key=plain, scopes={"leads": ["view", "delete"]}, actor=OPS)
    bi = APIKey.objects.get(name="BI")
    with pytest.raises(services.KeyValidationError, match="allowed IP ranges"):
        services.key_update(key=bi, data={"allowed_ips": ""}, actor=OPS)


def test_rotation_brings_a_new_key_within_the_maximum_lifetime() -> None:
    old = services.key_generate(
        name="Legacy",
        description="x",
        scopes={"contacts": ["view"]},
        expiry_policy="never",
        actor=OPS,
    ).key
    run("policy", "set", "--max-lifetime", "60d", "--default-expiry", "30d")
    rotated = services.key_rotate(key=old, grace=timedelta(hours=1), actor=OPS)
    assert rotated.key.expiry_policy == "30d"
    assert rotated.key.expires_at is not None
    entry = AuditEntry.objects.filter(action=AuditAction.GENERATED, key_id=rotated.key.pk).get()
    assert "expiry capped by the key policy to 30 days" in entry.message


def test_rotation_of_a_key_without_the_required_description_says_to_edit_it_first() -> None:
    old = services.key_generate(name="Legacy", scopes={"contacts": ["view"]}, actor=OPS).key
    run("policy", "set", "--require-description")
    with pytest.raises(services.KeyValidationError, match="Edit the key first, then rotate it"):
        services.key_rotate(key=old, grace=timedelta(hours=1), actor=OPS)
    services.key_update(key=old, data={"description": "CRM sync, owner: ops"}, actor=OPS)
    services.key_rotate(key=old, grace=timedelta(hours=1), actor=OPS)


def test_the_rotation_period_comes_from_the_policy() -> None:
    key = services.key_generate(name="K", scopes={"contacts": ["view"]}, actor=OPS).key
    run("policy", "set", "--rotation-days", "30d")
    with time_machine.travel(timezone.now() + timedelta(days=31), tick=False):
        rules.evaluate_daily_alerts()
    alert = key.alerts.get(kind=AlertKind.ROTATION_DUE)
    assert "rotate keys every 30 days" in alert.message


def test_changing_the_policy_needs_its_permission() -> None:
    person("sam", "keys.view_keypolicy")
    with pytest.raises(CommandError, match="sam may not change the key policy"):
        run("policy", "set", "--require-description", "--as", "sam")
    person("pat", "keys.change_keypolicy")
    run("policy", "set", "--require-description", "--as", "pat")
    assert AuditEntry.objects.get(action=AuditAction.POLICY_CHANGED).actor_label == "pat"
