"""Rotation through the surfaces a user touches: the API (enforcement and headers with a
moved clock, no job running), the service's refusals and the CLI."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditAction, AuditEntry
from keys import crypto, services
from keys.management.commands.apikey import Command as ApikeyCommand
from keys.models import APIKey, ExpiryPolicy
from tests.helpers import ACTOR, at, audit_count, bearer, generate

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/"
KEY_INFO = "/api/v1/key/"
T0 = datetime(2031, 1, 6, 9, 30, tzinfo=UTC)
ROTATION_HEADERS = ("Deprecation", "Sunset", "X-API-Key-Notice")

# Sunset is an HTTP date (RFC 9110 IMF-fixdate), written out by hand for T0 + each grace.
SUNSETS = {
    "1h": "Mon, 06 Jan 2031 10:30:00 GMT",
    "24h": "Tue, 07 Jan 2031 09:30:00 GMT",
    "7d": "Mon, 13 Jan 2031 09:30:00 GMT",
}


def refused_as_rotated(response) -> bool:
    return (
        response.status_code == 401
        and "replaced by rotation" in response.json()["detail"]
        and response["WWW-Authenticate"].startswith("Bearer")
    )


@pytest.mark.parametrize("choice", list(services.GRACE_CHOICES))
def test_both_keys_work_during_grace_and_the_old_one_stops_at_its_end(api, choice):
    grace = services.GRACE_CHOICES[choice]
    with at(T0) as clock:
        generated = generate()
        rotated = services.key_rotate(key=generated.key, grace=grace, actor=ACTOR)
        old, new = generated.full_key, rotated.full_key
        assert api.get(URL, **bearer(old)).status_code == 200
        assert api.get(URL, **bearer(new)).status_code == 200

        clock.shift(grace - timedelta(seconds=1))
        assert api.get(URL, **bearer(old)).status_code == 200

        clock.shift(timedelta(seconds=2))  # one second after the grace end; no job has run
        response = api.get(URL, **bearer(old))
        assert refused_as_rotated(response), response.content
        assert "grace period ended" in response.json()["detail"]
        assert api.get(URL, HTTP_X_API_KEY=old).status_code == 401
        assert api.get(URL, **bearer(new)).status_code == 200

    assert APIKey.objects.get(pk=generated.key.pk).revoked_at is None  # enforcement needed no job


def test_the_grace_end_itself_is_already_refused(api):
    with at(T0) as clock:
        generated = generate()
        services.key_rotate(key=generated.key, grace=timedelta(hours=1), actor=ACTOR)
        clock.shift(timedelta(hours=1))
        assert refused_as_rotated(api.get(URL, **bearer(generated.full_key)))


@pytest.mark.parametrize("choice", list(SUNSETS))
def test_rotation_headers_are_sent_during_grace_only(api, choice):
    with at(T0) as clock:
        generated = generate()
        rotated = services.key_rotate(
            key=generated.key, grace=services.GRACE_CHOICES[choice], actor=ACTOR
        )
        during = api.get(URL, **bearer(generated.full_key))
        assert during.status_code == 200
        assert during["Deprecation"] == "true"
        assert during["Sunset"] == SUNSETS[choice]
        notice = during["X-API-Key-Notice"]
        assert "replaced by rotation" in notice
        assert f"icrm_{rotated.key.public_id}" in notice
        # Never a secret: not the new key, not the old one, not even a fragment of either.
        for full in (rotated.full_key, generated.full_key):
            secret = full.split("_", 2)[2]
            for value in during.headers.values():
                assert secret not in value and secret[:8] not in value

        # A refused request made with the old key during grace also carries the notice.
        forbidden = api.get("/api/v1/leads/", **bearer(generated.full_key))
        assert forbidden.status_code == 403
        assert forbidden["Sunset"] == SUNSETS[choice]

        fresh = api.get(URL, **bearer(rotated.full_key))
        assert fresh.status_code == 200
        assert not any(name in fresh for name in ROTATION_HEADERS)

        clock.shift(services.GRACE_CHOICES[choice] + timedelta(seconds=1))
        after = api.get(URL, **bearer(generated.full_key))
        assert after.status_code == 401
        assert not any(name in after for name in ROTATION_HEADERS)


def test_a_key_never_rotated_gets_no_rotation_headers(api):
    generated = generate()
    response = api.get(URL, **bearer(generated.full_key))
    assert response.status_code == 200
    assert not any(name in response for name in ROTATION_HEADERS)


def test_key_info_tells_the_old_key_it_is_in_grace(api):
    with at(T0) as clock:
        generated = generate("Zapier")
        rotated = services.key_rotate(key=generated.key, grace=timedelta(days=7), actor=ACTOR)
        info = api.get(KEY_INFO, **bearer(generated.full_key)).json()
        assert info["status"] == "active"
        assert info["in_grace_period"] is True
        assert datetime.fromisoformat(info["grace_ends_at"]) == T0 + timedelta(days=7)
        assert info["replaced_by"] == rotated.key.public_id

        mine = api.get(KEY_INFO, **bearer(rotated.full_key)).json()
        assert (mine["in_grace_period"], mine["grace_ends_at"]) == (False, None)
        assert mine["name"] == "Zapier"

        clock.shift(timedelta(days=7))
        assert refused_as_rotated(api.get(KEY_INFO, **bearer(generated.full_key)))


def test_the_new_key_inherits_the_old_one_and_both_are_linked():
    with at(T0):
        generated = generate(
            "Marketing",
            description="HubSpot sync",
            scopes={"leads": ["view", "create", "edit"]},
            expiry_policy=ExpiryPolicy.DAYS_30,
        )
        services.key_update(key=generated.key, data={"rate_limit_per_minute": 120}, actor=ACTOR)
    with at(T0 + timedelta(days=10)):
        rotated = services.key_rotate(key=generated.key, grace=timedelta(hours=24), actor=ACTOR)
    old = APIKey.objects.get(pk=generated.key.pk)
    new = rotated.key
    assert (new.name, new.description, new.scopes) == (
        "Marketing",
        "HubSpot sync",
        {"leads": ["view", "create", "edit"]},
    )
    assert new.rate_limit_per_minute == 120
    # The same policy, counted from the rotation.
    assert new.expiry_policy == ExpiryPolicy.DAYS_30
    assert new.expires_at == T0 + timedelta(days=40)
    assert old.replaced_by == new and new.replaces == old
    assert old.grace_ends_at == T0 + timedelta(days=11)
    assert new.public_id != old.public_id and new.key_hash != old.key_hash
    rotation = AuditEntry.objects.get(key_id=old.pk, action=AuditAction.ROTATED)
    assert rotation.actor_label == "test-admin"
    assert new.public_id in rotation.message
    assert audit_count(new, AuditAction.GENERATED) == 1


def test_a_custom_expiry_date_stays():
    with at(T0):
        generated = generate(expiry_policy=ExpiryPolicy.CUSTOM, expiry_date=date(2031, 6, 30))
        rotated = services.key_rotate(key=generated.key, grace=timedelta(hours=1), actor=ACTOR)
    assert rotated.key.expires_at == generated.key.expires_at


def test_the_old_key_never_outlives_its_own_expiry(api):
    """Rotating a key that expires in two hours with 7 days' grace: the promise in Sunset is
    the expiry, not a week the key does not have."""
    with at(T0 - timedelta(days=30) + timedelta(hours=2)):
        generated = generate(expiry_policy=ExpiryPolicy.DAYS_30)
    with at(T0) as clock:
        rotated = services.key_rotate(key=generated.key, grace=timedelta(days=7), actor=ACTOR)
        assert rotated.old_key.grace_ends_at == generated.key.expires_at
        response = api.get(URL, **bearer(generated.full_key))
        assert response["Sunset"] == "Mon, 06 Jan 2031 11:30:00 GMT"
        clock.shift(timedelta(hours=2))
        assert api.get(URL, **bearer(generated.full_key)).status_code == 401
        assert api.get(URL, **bearer(rotated.full_key)).status_code == 200


def _revoked(generated):
    services.key_revoke(key=generated.key, actor=ACTOR, reason="leaked")


def _rotated(generated):
    services.key_rotate(key=generated.key, grace=timedelta(hours=24), actor=ACTOR)


@pytest.mark.parametrize(
    ("make_state", "policy", "later", "message"),
    [
        (_revoked, ExpiryPolicy.DAYS_90, timedelta(0), "This key is revoked; only an active key"),
        (None, ExpiryPolicy.DAYS_30, timedelta(days=31), "This key is expired; only an active key"),
        (_rotated, ExpiryPolicy.DAYS_90, timedelta(0), "already rotated; rotate its replacement"),
        # Past its grace the old key counts as revoked even before the job records it.
        (_rotated, ExpiryPolicy.DAYS_90, timedelta(days=2), "This key is revoked"),
    ],
    ids=["revoked", "expired", "in-grace", "grace-ended"],
)
def test_rotating_a_key_that_is_not_plainly_active_is_refused(make_state, policy, later, message):
    with at(T0) as clock:
        generated = generate(expiry_policy=policy)
        if make_state:
            make_state(generated)
        clock.shift(later)
        keys_before, audit_before = APIKey.objects.count(), AuditEntry.objects.count()
        with pytest.raises(services.KeyStateError, match=re.escape(message)):
            services.key_rotate(key=generated.key, grace=timedelta(hours=1), actor=ACTOR)
    assert (APIKey.objects.count(), AuditEntry.objects.count()) == (keys_before, audit_before)


@pytest.mark.parametrize(
    "grace", [timedelta(0), timedelta(seconds=-1), timedelta(days=30, seconds=1)]
)
def test_a_grace_period_out_of_range_is_refused(grace):
    generated = generate()
    with pytest.raises(services.KeyValidationError, match="grace period"):
        services.key_rotate(key=generated.key, grace=grace, actor=ACTOR)
    assert APIKey.objects.count() == 1


# --- the CLI ------------------------------------------------------------------------------


def apikey(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("grace", "delta"),
    [
        ("1h", timedelta(hours=1)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
    ],
)
def test_cli_rotate_prints_only_the_new_key(api, grace, delta):
    with at(T0):
        generated = generate()
        out, err = apikey("rotate", generated.key.public_id, "--grace", grace)
        new_full = out.strip()
        assert out == new_full + "\n"  # one line, nothing but the key
        new = APIKey.objects.get(public_id=crypto.parse_key(new_full))
        assert APIKey.objects.get(pk=generated.key.pk).replaced_by == new
        assert APIKey.objects.get(pk=generated.key.pk).grace_ends_at == T0 + delta
        assert api.get(URL, **bearer(new_full)).status_code == 200
        assert api.get(URL, **bearer(generated.full_key)).status_code == 200
    assert new.display_id in err and "the old key remains active until" in err
    assert "then is automatically revoked" in err
    assert new_full not in err


def test_cli_rotate_defaults_to_24_hours_and_takes_the_display_form():
    with at(T0):
        generated = generate()
        apikey("rotate", f"{generated.key.display_id}")
    assert APIKey.objects.get(pk=generated.key.pk).grace_ends_at == T0 + timedelta(hours=24)


@pytest.mark.parametrize("grace", ["2w", "1.5h", "", "h", "1 h h", "-1h", "0s", "31d"])
def test_cli_rotate_refuses_a_bad_grace_with_a_message(grace):
    generated = generate()
    with pytest.raises(CommandError, match=r"[Gg]race period"):
        apikey("rotate", generated.key.public_id, f"--grace={grace}")
    assert APIKey.objects.count() == 1
    assert APIKey.objects.get().replaced_by_id is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--grace", "2w"], "expected <n>s, <n>m, <n>h or <n>d"),
        (["--grace", "45d"], "at most 30 days"),
        ([], "already rotated"),
    ],
)
def test_cli_rotate_exits_non_zero_with_the_reason_on_stderr(capsys, argv, message):
    generated = generate()
    if message == "already rotated":
        services.key_rotate(key=generated.key, grace=timedelta(hours=1), actor=ACTOR)
    with pytest.raises(SystemExit) as exit_info:
        ApikeyCommand().run_from_argv(
            ["manage.py", "apikey", "rotate", generated.key.public_id, *argv]
        )
    assert exit_info.value.code != 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
