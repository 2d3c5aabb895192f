"""The rotation and expiry jobs, called as beat and `runjob` call them, with a moved clock."""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command

from audit.models import AuditAction, AuditEntry
from keys import jobs, services
from keys.api.authentication import MSG_GRACE_ENDED
from keys.models import APIKey, ExpiryPolicy, KeyStatus
from tests.helpers import ACTOR, at, audit_count, bearer, chain_ok, generate

pytestmark = pytest.mark.django_db

T0 = datetime(2031, 1, 6, 9, 30, tzinfo=UTC)
RECIPIENTS = ["ops@example.com", "security@example.com"]


@pytest.fixture
def recipients(settings):
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": RECIPIENTS}
    return RECIPIENTS


def runjob(name: str) -> str:
    out = io.StringIO()
    call_command("runjob", name, stdout=out)
    return out.getvalue().strip()


# --- revoke_grace_ended ----------------------------------------------------------------------


def test_revoke_grace_ended_revokes_once_at_the_grace_end(api):
    with at(T0) as clock:
        generated = generate()
        rotated = services.key_rotate(key=generated.key, grace=timedelta(hours=1), actor=ACTOR)
        clock.shift(timedelta(minutes=59))
        assert jobs.revoke_grace_ended() == {"revoked": 0, "batches": 0}

        clock.shift(timedelta(minutes=5))  # the job runs a few minutes late
        assert jobs.revoke_grace_ended() == {"revoked": 1, "batches": 1}
        assert jobs.revoke_grace_ended() == {"revoked": 0, "batches": 0}

        old = APIKey.objects.get(pk=generated.key.pk)
        # revoked_at is when the key really stopped working, not when the job ran.
        assert old.revoked_at == T0 + timedelta(hours=1)
        assert (old.revoked_by_label, old.revoke_reason) == (
            "system",
            "grace period ended after rotation",
        )
        assert old.status == KeyStatus.REVOKED
        entry = AuditEntry.objects.get(key_id=old.pk, action=AuditAction.REVOKED)
        assert entry.actor_label == "system:revoke_grace_ended"
        assert entry.actor_user_id is None
        assert entry.message == "revoked: grace period ended after rotation"
        assert entry.key_public_id == old.public_id

        # The integration keeps being told why, and the replacement is untouched.
        detail = api.get("/api/v1/contacts/", **bearer(generated.full_key)).json()["detail"]
        assert detail == MSG_GRACE_ENDED.format(when="2031-01-06 10:30 UTC")
        assert api.get("/api/v1/contacts/", **bearer(rotated.full_key)).status_code == 200
    new = APIKey.objects.get(pk=rotated.key.pk)
    assert new.revoked_at is None and audit_count(new, AuditAction.REVOKED) == 0
    assert chain_ok()


def test_a_key_revoked_by_hand_during_grace_keeps_its_own_revocation():
    with at(T0) as clock:
        generated = generate()
        services.key_rotate(key=generated.key, grace=timedelta(hours=24), actor=ACTOR)
        clock.shift(timedelta(hours=2))
        services.key_revoke(key=generated.key, actor=ACTOR, reason="leaked in a log")
        clock.shift(timedelta(days=2))
        assert jobs.revoke_grace_ended()["revoked"] == 0
    old = APIKey.objects.get(pk=generated.key.pk)
    assert old.revoked_at == T0 + timedelta(hours=2)
    assert (old.revoked_by_label, old.revoke_reason) == ("test-admin", "leaked in a log")
    assert audit_count(old, AuditAction.REVOKED) == 1


def test_revoke_grace_ended_works_through_every_batch():
    with at(T0) as clock:
        olds = [
            services.key_rotate(key=generate(f"K{i}").key, grace=timedelta(hours=1), actor=ACTOR)
            for i in range(23)
        ]
        not_yet = services.key_rotate(key=generate().key, grace=timedelta(days=7), actor=ACTOR)
        clock.shift(timedelta(hours=2))
        assert jobs.revoke_grace_ended(batch_size=5) == {"revoked": 23, "batches": 5}
    for rotated in olds:
        old = APIKey.objects.get(pk=rotated.old_key.pk)
        assert old.revoked_at == T0 + timedelta(hours=1)
        assert audit_count(old, AuditAction.REVOKED) == 1
    assert APIKey.objects.get(pk=not_yet.old_key.pk).revoked_at is None
    assert chain_ok()


def test_revoke_grace_ended_queries_per_key_stay_flat(django_assert_max_num_queries):
    with at(T0) as clock:
        for i in range(10):
            services.key_rotate(key=generate(f"K{i}").key, grace=timedelta(hours=1), actor=ACTOR)
        clock.shift(timedelta(hours=2))
        # Per key: the UPDATE and the audit entry (its savepoint, the chain's last link, the
        # INSERT, and on PostgreSQL the chain lock); per batch: one SELECT and its savepoint.
        with django_assert_max_num_queries(10 * 6 + 4):
            assert jobs.revoke_grace_ended()["revoked"] == 10


# --- record_expiries -------------------------------------------------------------------------


def test_record_expiries_writes_one_expired_entry_per_key(api):
    with at(T0) as clock:
        expiring = generate("Expiring", expiry_policy=ExpiryPolicy.DAYS_30)
        revoked_first = generate("Revoked first", expiry_policy=ExpiryPolicy.DAYS_30)
        services.key_revoke(key=revoked_first.key, actor=ACTOR)
        replaced_first = generate("Rotated first", expiry_policy=ExpiryPolicy.DAYS_30)
        clock.shift(timedelta(days=1))
        replacement = services.key_rotate(
            key=replaced_first.key, grace=timedelta(hours=1), actor=ACTOR
        )
        clock.shift(-timedelta(days=1))
        never = generate("Never", expiry_policy=ExpiryPolicy.NEVER)

        clock.shift(timedelta(days=30) - timedelta(seconds=1))
        assert jobs.record_expiries() == {"recorded": 0, "batches": 0}
        clock.shift(timedelta(seconds=1))
        # Refused from the expiry on, whether or not the job has run.
        assert api.get("/api/v1/contacts/", **bearer(expiring.full_key)).status_code == 401
        clock.shift(timedelta(minutes=1))
        assert jobs.record_expiries() == {"recorded": 1, "batches": 1}
        assert jobs.record_expiries() == {"recorded": 0, "batches": 0}

    key = APIKey.objects.get(pk=expiring.key.pk)
    assert key.expiry_recorded_at == T0 + timedelta(days=30, minutes=1)
    entry = AuditEntry.objects.get(key_id=key.pk, action=AuditAction.EXPIRED)
    assert entry.actor_label == "system:record_expiries"
    assert entry.message == "expired at 2031-02-05 09:30 UTC"
    for other in (revoked_first, replaced_first, never):
        assert audit_count(other.key, AuditAction.EXPIRED) == 0
    # The replacement got a fresh 30 days from its rotation.
    assert replacement.key.expires_at == T0 + timedelta(days=31)
    assert audit_count(replacement.key, AuditAction.EXPIRED) == 0
    assert chain_ok()


def test_record_expiries_in_batches():
    with at(T0) as clock:
        keys = [generate(f"K{i}", expiry_policy=ExpiryPolicy.DAYS_30).key for i in range(12)]
        clock.shift(timedelta(days=31))
        assert jobs.record_expiries(batch_size=5) == {"recorded": 12, "batches": 3}
    assert all(audit_count(key, AuditAction.EXPIRED) == 1 for key in keys)


# --- send_expiry_reminders -------------------------------------------------------------------


def test_expiry_reminders_mail_each_key_once(recipients):
    with at(T0 - timedelta(days=27)):
        in_3_days = generate("Website form", expiry_policy=ExpiryPolicy.DAYS_30)
    with at(T0 - timedelta(days=24)):
        in_6_days = generate("BI tool", expiry_policy=ExpiryPolicy.DAYS_30)
        rotated_away = generate("Old Zapier", expiry_policy=ExpiryPolicy.DAYS_30)
    with at(T0 - timedelta(days=20)):
        in_10_days = generate("Marketing", expiry_policy=ExpiryPolicy.DAYS_30)
    with at(T0 - timedelta(days=28)):
        revoked = generate("Revoked", expiry_policy=ExpiryPolicy.DAYS_30)
        services.key_revoke(key=revoked.key, actor=ACTOR)
    with at(T0 - timedelta(days=40)):
        already_expired = generate("Gone", expiry_policy=ExpiryPolicy.DAYS_30)
    never = generate("Never", expiry_policy=ExpiryPolicy.NEVER)

    with at(T0) as clock:
        replacement = services.key_rotate(
            key=rotated_away.key, grace=timedelta(hours=1), actor=ACTOR
        )
        assert jobs.send_expiry_reminders() == {"reminded": 2, "emails": 1}
        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == RECIPIENTS
        assert message.subject == "Intellicon CRM: 2 API keys expire within 7 days"
        assert "Website form" in message.body and in_3_days.key.display_id in message.body
        assert "BI tool" in message.body and in_6_days.key.display_id in message.body
        assert message.body.index("Website form") < message.body.index("BI tool")
        for absent in ("Marketing", "Old Zapier", "Revoked", "Gone", "Never"):
            assert absent not in message.body
        every_key = (in_3_days, in_6_days, rotated_away, in_10_days, revoked, already_expired)
        for generated in (*every_key, replacement):
            secret = generated.full_key.split("_", 2)[2]
            assert secret[:8] not in message.body and secret[:8] not in message.subject

        # Once per key: the next daily run sends nothing until another key comes due.
        clock.shift(timedelta(days=1))
        assert jobs.send_expiry_reminders() == {"reminded": 0, "emails": 0}
        clock.shift(timedelta(days=3))
        assert jobs.send_expiry_reminders() == {"reminded": 1, "emails": 1}
        assert mail.outbox[1].subject == (
            f"Intellicon CRM: API key 'Marketing' ({in_10_days.key.display_id}) expires within 7 days"
        )

    for generated in (in_3_days, in_6_days, in_10_days):
        entry = AuditEntry.objects.get(key_id=generated.key.pk, action=AuditAction.REMINDER)
        assert entry.actor_label == "system:send_expiry_reminders"
        assert "e-mailed to 2 recipient(s)" in entry.message
    for generated in (rotated_away, revoked, already_expired, never):
        assert audit_count(generated.key, AuditAction.REMINDER) == 0
    assert chain_ok()


def test_expiry_reminders_without_recipients_are_recorded_and_logged(settings, caplog):
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": []}
    with at(T0 - timedelta(days=25)):
        soon = generate("Website form", expiry_policy=ExpiryPolicy.DAYS_30)
    with at(T0), caplog.at_level(logging.WARNING, logger="keys.jobs"):
        assert jobs.send_expiry_reminders() == {"reminded": 1, "emails": 0}
        assert jobs.send_expiry_reminders()["reminded"] == 0
    assert mail.outbox == []
    assert soon.key.display_id in caplog.text and "API_KEY_ALERT_RECIPIENTS" in caplog.text
    entry = AuditEntry.objects.get(key_id=soon.key.pk, action=AuditAction.REMINDER)
    assert "no recipients configured" in entry.message


def test_expiry_reminders_in_batches_one_mail_per_batch(recipients):
    with at(T0 - timedelta(days=25)):
        keys = [generate(f"K{i:02}", expiry_policy=ExpiryPolicy.DAYS_30).key for i in range(7)]
    with at(T0):
        assert jobs.send_expiry_reminders(batch_size=3) == {"reminded": 7, "emails": 3}
    bodies = "".join(message.body for message in mail.outbox)
    assert all(bodies.count(key.display_id) == 1 for key in keys)


# --- runjob and the tasks -------------------------------------------------------------------


def test_runjob_runs_the_rotation_and_expiry_jobs_once(recipients):
    with at(T0 - timedelta(days=29)):
        expiring = generate("Expiring", expiry_policy=ExpiryPolicy.DAYS_30)
        services.key_rotate(key=generate().key, grace=timedelta(hours=1), actor=ACTOR)
    with at(T0):
        assert runjob("revoke_grace_ended") == 'revoke_grace_ended: {"revoked": 1, "batches": 1}'
        assert runjob("record_expiries") == 'record_expiries: {"recorded": 0, "batches": 0}'
        assert '"expiry": {"reminded": 1, "emails": 1}' in runjob("daily_reminders")
        assert runjob("revoke_grace_ended") == 'revoke_grace_ended: {"revoked": 0, "batches": 0}'
    with at(T0 + timedelta(days=2)):
        assert runjob("record_expiries") == 'record_expiries: {"recorded": 1, "batches": 1}'
    assert audit_count(expiring.key, AuditAction.EXPIRED) == 1
