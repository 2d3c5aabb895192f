from datetime import date, timedelta

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from keys import crypto, services
from keys.models import APIKey, KeyStatus

pytestmark = pytest.mark.django_db


def test_generate_stores_only_a_hash(actor):
    generated = services.key_generate(name="Website", scopes={"contacts": ["create"]}, actor=actor)
    key = APIKey.objects.get()
    assert key.key_hash == crypto.hash_key(generated.full_key)
    assert generated.full_key not in key.key_hash
    assert key.public_id in generated.full_key
    assert key.scopes == {"contacts": ["create"]}
    assert key.status == KeyStatus.ACTIVE
    assert key.created_by_label == "test-admin"


def test_generate_writes_an_audit_entry_in_the_same_transaction(actor):
    generated = services.key_generate(name="BI", scopes={"leads": ["view"]}, actor=actor)
    entry = AuditEntry.objects.get()
    assert entry.action == AuditAction.GENERATED
    assert entry.key_public_id == generated.key.public_id
    assert entry.key_name == "BI"
    assert entry.actor_label == "test-admin" and entry.ip == "127.0.0.1"


def test_a_failed_generate_leaves_no_audit_entry(actor):
    with pytest.raises(services.KeyValidationError):
        services.key_generate(name="", scopes={"contacts": ["view"]}, actor=actor)
    assert not AuditEntry.objects.exists() and not APIKey.objects.exists()


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ({}, "at least one permission"),
        ({"contacts": []}, "at least one permission"),
        ({"invoices": ["view"]}, "Unknown module"),
        ({"contacts": ["fly"]}, "Unknown action"),
    ],
)
def test_bad_scopes_are_refused(actor, scopes, message):
    with pytest.raises(services.KeyValidationError, match=message):
        services.key_generate(name="X", scopes=scopes, actor=actor)


@pytest.mark.parametrize(("policy", "days"), [("30d", 30), ("90d", 90), ("1y", 365)])
def test_expiry_policies(actor, policy, days):
    with time_machine.travel("2026-11-26 12:00Z", tick=False):
        key = services.key_generate(
            name="X", scopes={"contacts": ["view"]}, actor=actor, expiry_policy=policy
        ).key
        assert key.expires_at == timezone.now() + timedelta(days=days)


def test_never_expires(actor):
    key = services.key_generate(
        name="X", scopes={"contacts": ["view"]}, actor=actor, expiry_policy="never"
    ).key
    assert key.expires_at is None


def test_default_expiry_is_90_days(actor):
    key = services.key_generate(name="X", scopes={"contacts": ["view"]}, actor=actor).key
    assert key.expiry_policy == "90d"


def test_custom_date_works_through_that_day(actor):
    with time_machine.travel("2026-11-26 12:00Z", tick=False):
        key = services.key_generate(
            name="X",
            scopes={"contacts": ["view"]},
            actor=actor,
            expiry_policy="custom",
            expiry_date=date(2026, 12, 31),
        ).key
    assert key.expires_at.isoformat() == "2027-01-01T00:00:00+00:00"


def test_a_custom_date_of_today_works_through_the_end_of_today(actor):
    with time_machine.travel("2026-11-26 12:00Z", tick=False):
        key = services.key_generate(
            name="X",
            scopes={"contacts": ["view"]},
            actor=actor,
            expiry_policy="custom",
            expiry_date=date(2026, 11, 26),
        ).key
    assert key.expires_at.isoformat() == "2026-11-27T00:00:00+00:00"


@pytest.mark.parametrize("when", [date(2026, 11, 25), date(2020, 1, 1), date(9999, 12, 31)])
def test_custom_date_must_not_be_past_and_sane(actor, when):
    with (
        time_machine.travel("2026-11-26 12:00Z", tick=False),
        pytest.raises(services.KeyValidationError),
    ):
        services.key_generate(
            name="X",
            scopes={"contacts": ["view"]},
            actor=actor,
            expiry_policy="custom",
            expiry_date=when,
        )


def test_update_records_before_and_after(actor, make_key):
    key, _ = make_key({"contacts": ["view"]}, name="Old")
    services.key_update(
        key=key, data={"name": "New", "scopes": {"contacts": ["view", "export"]}}, actor=actor
    )
    scopes_entry = AuditEntry.objects.get(action=AuditAction.SCOPES_CHANGED)
    assert scopes_entry.before == {"scopes": {"contacts": ["view"]}}
    assert scopes_entry.after == {"scopes": {"contacts": ["view", "export"]}}
    edited = AuditEntry.objects.get(action=AuditAction.EDITED)
    assert edited.before == {"name": "Old"} and edited.after == {"name": "New"}


def test_update_without_change_writes_nothing(actor, make_key):
    key, _ = make_key({"contacts": ["view"]}, name="Same")
    count = AuditEntry.objects.count()
    services.key_update(
        key=key, data={"name": "Same", "scopes": {"contacts": ["view"]}}, actor=actor
    )
    assert AuditEntry.objects.count() == count


def test_revoke_is_permanent_and_audited_once(actor, make_key):
    key, _ = make_key()
    services.key_revoke(key=key, actor=actor, reason="no longer used")
    key.refresh_from_db()
    assert key.status == KeyStatus.REVOKED
    with pytest.raises(services.KeyStateError):
        services.key_revoke(key=key, actor=actor)
    with pytest.raises(services.KeyStateError):
        services.key_update(key=key, data={"name": "again"}, actor=actor)
    assert AuditEntry.objects.filter(action=AuditAction.REVOKED).count() == 1


def test_status_is_computed_from_timestamps(make_key):
    key, _ = make_key(expiry_policy="30d")
    now = timezone.now()
    assert key.status_at(now) == KeyStatus.ACTIVE
    assert key.status_at(now + timedelta(days=31)) == KeyStatus.EXPIRED
    assert list(APIKey.objects.expired(now + timedelta(days=31))) == [key]
    assert list(APIKey.objects.active(now)) == [key]


def test_str_never_contains_a_secret(make_key):
    key, full = make_key(name="Zapier")
    assert str(key) == f"Zapier (icrm_{key.public_id}…)"
    assert full not in str(key) and full not in repr(key)
