"""The e-mail outbox against real mail servers on 127.0.0.1: a stalled mail server delays only
the mail (a revoke never waits for it), a sender killed mid-send loses nothing, and what is
guaranteed is at least once (a copy whose acceptance was not recorded is sent again, with the
same Message-ID)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.models import AuditAction
from keys import jobs
from keys.alerts import outbox, rules
from keys.conf import key_settings
from keys.models import Alert, AlertKind, APIKey, ExpiryPolicy, OutboxEmail
from tests import smtp
from tests.helpers import ROOT, at, audit_count, generate, process_env, wait_for

RECIPIENTS = ["ops@example.com", "security@example.com"]


def expiring_soon(name: str = "Website form") -> APIKey:
    with at(timezone.now() - timedelta(days=26)):
        return generate(name, expiry_policy=ExpiryPolicy.DAYS_30).key


def after_the_claim() -> Any:
    return at(timezone.now() + timedelta(seconds=key_settings.OUTBOX_CLAIM_SECONDS + 1))


def in_a_thread(target: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run ``target`` on its own thread (and its own database connection)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def start_job(tmp_path: Path, name: str, port: int) -> subprocess.Popen[bytes]:
    """``manage.py runjob NAME`` in its own process, mailing through 127.0.0.1:``port``."""
    env = process_env(
        tmp_path, API_KEY_ALERT_RECIPIENTS=",".join(RECIPIENTS), **smtp.smtp_env(port, timeout=60)
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "runjob", name],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


# --- a stalled mail server --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_revoke_never_waits_for_a_stalled_mail_server(settings):
    """The fault-injection run: a reminder job talking to a mail server that never answers held
    the audit chain's lock (PostgreSQL) or SQLite's write lock, and an unrelated revoke waited
    55 s, or died with "database is locked". Now the job's transaction has committed before it
    connects, and the revoke goes through while the mail server is still silent."""
    due = expiring_soon()
    unrelated = generate("Unrelated").key
    with smtp.StalledServer() as stalled:
        smtp.use(settings, stalled.port, timeout=60)
        job, job_outcome = in_a_thread(jobs.send_expiry_reminders)
        assert wait_for(stalled.connected.is_set)

        revoke, revoke_outcome = in_a_thread(
            lambda: call_command("apikey", "revoke", str(unrelated.pk), "--yes")
        )
        assert wait_for(lambda: not revoke.is_alive())
        assert "error" not in revoke_outcome, revoke_outcome.get("error")
        assert job.is_alive(), "the revoke waited until the mail server gave up"
        assert APIKey.objects.get(pk=unrelated.pk).revoked_at is not None

        stalled.release()  # the server hangs up: that attempt fails
        job.join(timeout=60)
    assert job_outcome["result"] == {"reminded": 1, "emails": 1}
    # The reminder is recorded once and its digest is waiting, not lost.
    assert audit_count(due, AuditAction.REMINDER) == 1
    queued = OutboxEmail.objects.get()
    assert queued.sent_at is None and queued.attempts == 1 and queued.last_error

    with smtp.MailServer() as server, after_the_claim():
        smtp.use(settings, server.port)
        assert outbox.deliver() == {"sent": 1, "failed": 0, "waiting": 0}
    (message,) = server.messages
    assert message["Subject"].endswith("expires within 7 days")
    assert due.display_id in message.get_content()


@pytest.mark.django_db(transaction=True)
def test_an_alert_is_not_lost_when_its_sender_is_killed_mid_send(settings, tmp_path):
    """It used to be marked notified before it was sent: a worker killed mid-send lost it for
    good. Now it waits in the outbox, claimed, and the first run after the claim sends it."""
    with at(timezone.now() - timedelta(days=31)):
        key = generate("Forgotten integration").key
    with smtp.StalledServer() as stalled:
        job = start_job(tmp_path, "daily_reminders", stalled.port)
        try:
            assert wait_for(stalled.connected.is_set)
        finally:
            kill(job)
    alert = Alert.objects.get(key=key, kind=AlertKind.UNUSED)
    queued = OutboxEmail.objects.get()
    assert alert.notified_at is not None  # queued with its e-mail, in one transaction
    assert queued.sent_at is None and queued.attempts == 1

    with smtp.MailServer() as server:
        smtp.use(settings, server.port)
        # Still claimed by the dead sender: a run right away leaves it alone...
        assert outbox.deliver()["sent"] == 0
        # ...and the first run after the claim ran out sends it.
        with after_the_claim():
            assert outbox.deliver() == {"sent": 1, "failed": 0, "waiting": 0}
            assert outbox.deliver()["sent"] == 0
    (message,) = server.messages
    assert "Unused key" in message["Subject"]
    assert alert.message in message.get_content()
    assert sorted(message["To"].split(", ")) == RECIPIENTS


# --- at least once ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_digest_accepted_but_not_recorded_is_sent_again_with_the_same_message_id(
    settings, tmp_path
):
    """Issue 17, item 5: the worker dies after the mail server has the digest and before the
    acceptance is recorded. Guaranteed: at least once — the digest is sent again, as the same
    message (same Message-ID, same text); the keys stay reminded once; once a copy's acceptance
    is recorded, it is never sent again."""
    due = expiring_soon()
    with smtp.MailServer() as server:
        server.hold()  # the server keeps the digest but its "250 accepted" waits
        job = start_job(tmp_path, "daily_reminders", server.port)
        try:
            assert wait_for(server.received.is_set)
        finally:
            kill(job)
        server.release()
        smtp.use(settings, server.port)
        with after_the_claim():
            assert outbox.deliver() == {"sent": 1, "failed": 0, "waiting": 0}
            assert outbox.deliver()["sent"] == 0
    first, second = server.messages
    assert first["Message-ID"] == second["Message-ID"] == OutboxEmail.objects.get().message_id
    assert first.get_content() == second.get_content()
    assert due.display_id in first.get_content()
    assert audit_count(due, AuditAction.REMINDER) == 1
    assert APIKey.objects.get(pk=due.pk).expiry_reminder_sent_at is not None


# --- failures and retries ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refused_send_is_retried_with_backoff_and_sent_once(settings):
    t0 = datetime(2031, 3, 2, 6, 0, tzinfo=UTC)
    with at(t0 - timedelta(days=26)):
        due = generate("Website form", expiry_policy=ExpiryPolicy.DAYS_30).key
    smtp.use(settings, smtp.free_port())  # nothing listens: connection refused
    with at(t0) as clock:
        assert jobs.send_expiry_reminders() == {"reminded": 1, "emails": 1}
        queued = OutboxEmail.objects.get()
        assert (queued.sent_at, queued.attempts) == (None, 1)
        assert "ConnectionRefusedError" in queued.last_error
        assert outbox.deliver() == {"sent": 0, "failed": 0, "waiting": 1}  # backing off
        clock.shift(timedelta(seconds=61))
        assert outbox.deliver() == {"sent": 0, "failed": 1, "waiting": 1}
        assert OutboxEmail.objects.get().next_attempt_at == timezone.now() + timedelta(minutes=2)

        with smtp.MailServer() as server:
            smtp.use(settings, server.port)
            clock.shift(timedelta(minutes=2))
            assert outbox.deliver() == {"sent": 1, "failed": 0, "waiting": 0}
            assert jobs.send_expiry_reminders() == {"reminded": 0, "emails": 0}
            assert outbox.deliver()["sent"] == 0
    (message,) = server.messages
    assert due.display_id in message.get_content()
    assert OutboxEmail.objects.get().attempts == 3


@pytest.mark.django_db
def test_the_first_failure_ends_a_run_and_the_rest_wait(settings, make_key):
    for i in range(3):
        outbox.queue(subject=f"Message {i}", body="text", to=RECIPIENTS)
    smtp.use(settings, smtp.free_port())
    assert outbox.deliver() == {"sent": 0, "failed": 1, "waiting": 3}
    assert sorted(OutboxEmail.objects.values_list("attempts", flat=True)) == [0, 0, 1]
    with smtp.MailServer() as server:
        smtp.use(settings, server.port)
        assert outbox.deliver() == {"sent": 2, "failed": 0, "waiting": 1}
        with after_the_claim():
            assert outbox.deliver() == {"sent": 1, "failed": 0, "waiting": 0}
    assert sorted(m["Subject"] for m in server.messages) == [f"Message {i}" for i in range(3)]


@pytest.mark.django_db
def test_sent_messages_are_kept_for_the_retention_then_pruned(settings):
    outbox.queue(subject="Old news", body="text", to=RECIPIENTS)
    assert outbox.deliver()["sent"] == 1  # the suite's in-memory backend
    days = key_settings.OUTBOX_RETENTION_DAYS
    with at(timezone.now() + timedelta(days=days - 1)):
        outbox.deliver()
        assert OutboxEmail.objects.count() == 1
    with at(timezone.now() + timedelta(days=days + 1)):
        outbox.deliver()
        assert OutboxEmail.objects.count() == 0


@pytest.mark.django_db
def test_two_alerts_queue_two_mails_in_the_transactions_that_mark_them(settings):
    with at(timezone.now() - timedelta(days=31)):
        generate("A")
        generate("B")
    smtp.use(settings, smtp.free_port())  # the mail server is down: the alerts still open
    assert rules.evaluate_daily_alerts()["notified"] == 2
    assert Alert.objects.filter(notified_at__isnull=False).count() == 2
    assert OutboxEmail.objects.filter(sent_at__isnull=True).count() == 2
    assert rules.evaluate_daily_alerts()["notified"] == 0  # queued once per episode
