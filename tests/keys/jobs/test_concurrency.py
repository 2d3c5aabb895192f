"""Two of a thing at once: rotations of one key, overlapping job runs. Each thread has its own
database connection. On PostgreSQL the first rotation holds its row lock until the second is
seen waiting on it, so the overlap is certain, not left to luck; SQLite serialises whole
write transactions (IMMEDIATE), which these tests also hold to the same outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from keys import jobs, services
from keys.models import APIKey, ExpiryPolicy
from keys.services import lifecycle
from tests.helpers import ACTOR, audit_count, chain_ok, generate, rotated_keys_due, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs row locks (PostgreSQL): SQLite has none"
)


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Start each call in its own thread at the same moment; return results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def another_session_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


def test_two_concurrent_rotations_of_one_key_make_exactly_one_new_key(monkeypatch):
    key = generate("Contended").key
    real_lock = lifecycle._lock
    first = threading.Event()

    def lock_and_hold(k: Any) -> APIKey:
        locked = real_lock(k)
        if connection.vendor == "postgresql" and not first.is_set():
            first.set()
            # Keep the row lock until the other rotation is queued behind it.
            assert wait_for(another_session_waits_for_a_lock)
        return locked

    monkeypatch.setattr(lifecycle, "_lock", lock_and_hold)
    rotate = lambda: services.key_rotate(key=key.pk, grace=timedelta(hours=1), actor=ACTOR)  # noqa: E731
    results = run_together(rotate, rotate)

    rotations = [r for r in results if isinstance(r, services.Rotated)]
    refusals = [r for r in results if isinstance(r, services.KeyStateError)]
    assert (len(rotations), len(refusals)) == (1, 1), results
    assert "already rotated" in str(refusals[0])
    assert APIKey.objects.count() == 2
    old = APIKey.objects.get(pk=key.pk)
    assert old.replaced_by_id == rotations[0].key.pk
    assert audit_count(old, AuditAction.ROTATED) == 1
    assert chain_ok()


JOB_CASES = {
    "revoke_grace_ended": (AuditAction.REVOKED, "revoked"),
    "record_expiries": (AuditAction.EXPIRED, "recorded"),
    "send_expiry_reminders": (AuditAction.REMINDER, "reminded"),
}


def make_due(job: str, count: int) -> list[APIKey]:
    if job == "revoke_grace_ended":
        return rotated_keys_due(count)
    back = timedelta(days=31) if job == "record_expiries" else timedelta(days=25)
    with time_machine.travel(timezone.now() - back, tick=False):
        return [generate(f"K{i}", expiry_policy=ExpiryPolicy.DAYS_30).key for i in range(count)]


@pytest.mark.parametrize("job", list(JOB_CASES))
def test_two_overlapping_runs_handle_each_key_once(settings, job):
    settings.API_KEYS = {**settings.API_KEYS, "ALERT_RECIPIENTS": ["ops@example.com"]}
    due = make_due(job, 40)
    action, counted = JOB_CASES[job]
    run = lambda: getattr(jobs, job)(batch_size=3)  # noqa: E731

    results = run_together(run, run)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(r[counted] for r in results) == 40, results
    for key in due:
        assert audit_count(key, action) == 1, key
    assert AuditEntry.objects.filter(action=action).count() == 40
    if job == "send_expiry_reminders":
        bodies = "".join(m.body for m in mail.outbox)
        assert all(bodies.count(key.display_id) == 1 for key in due)
    assert chain_ok()


@on_postgresql
def test_a_run_skips_the_keys_another_run_holds_instead_of_waiting():
    due = rotated_keys_due(25)
    held = sorted(key.pk for key in due)[:10]
    holding, release = threading.Event(), threading.Event()

    def other_run_holds_rows() -> None:
        try:
            with transaction.atomic():
                list(APIKey.objects.select_for_update().filter(pk__in=held))
                holding.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    holder = threading.Thread(target=other_run_holds_rows)
    holder.start()
    try:
        assert holding.wait(timeout=60)
        # Returns at once with the 15 free keys: it neither waits for nor touches the 10.
        assert jobs.revoke_grace_ended(batch_size=4) == {"revoked": 15, "batches": 4}
        assert APIKey.objects.filter(pk__in=held, revoked_at__isnull=False).count() == 0
    finally:
        release.set()
        holder.join(timeout=60)
    close_old_connections()
    assert jobs.revoke_grace_ended() == {"revoked": 10, "batches": 1}
    assert all(audit_count(key, AuditAction.REVOKED) == 1 for key in due)
    assert all(
        e.actor_label == "system:revoke_grace_ended"
        for e in AuditEntry.objects.filter(action=AuditAction.REVOKED)
    )
