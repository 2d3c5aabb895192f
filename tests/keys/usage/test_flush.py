"""The hand-over: overlapping flushes, a flush that dies halfway, Redis going away, the bounded
buffer and the background shipper. After every recovery the figures are exact."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from crm_keys.redis_client import get_redis
from keys.models import UsageFlush, UsageHour
from keys.usage import flush, recorder, stats, transport
from keys.usage import rows as usage_rows
from tests.helpers import ENV_REDIS_URL

from .traffic import assert_exact, make_fleet, send_mix

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there: connection refused at once


class InjectedCrash(Exception):
    pass


def crash_once(monkeypatch, module, name: str, *, after: bool = False) -> list[int]:
    """Make ``module.<name>`` raise once: before doing its work, or (after=True) after it."""
    real = getattr(module, name)
    crashes: list[int] = []

    def flaky(*args, **kwargs):
        if crashes:
            return real(*args, **kwargs)
        crashes.append(1)
        if after:
            real(*args, **kwargs)
        raise InjectedCrash(name)

    monkeypatch.setattr(module, name, flaky)
    return crashes


def in_thread(target, *args) -> threading.Thread:
    def run():
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# --- overlapping flushes ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_flushes_at_once_count_everything_once(api, backend):
    fleet = make_fleet()
    sent = send_mix(api, fleet, rounds=2)
    recorder.ship()
    sent.merge(send_mix(api, fleet))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def flush_together():
        barrier.wait()
        try:
            flush.flush()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [in_thread(flush_together) for _ in range(2)]
    for thread in threads:
        thread.join()
    assert errors == []
    flush.flush()
    assert_exact(sent, fleet)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not ENV_REDIS_URL, reason="REDIS_URL is not set")
def test_a_flush_that_overtakes_another_mid_hand_over(api, backend, monkeypatch):
    """Flush A hands over and, before its write, flush B runs to the end (in another thread,
    on its own connection) and writes A's hand-over. A's own write must then be a no-op."""
    if backend != "redis":
        pytest.skip("the hand-over exists with Redis only")
    fleet = make_fleet()
    sent = send_mix(api, fleet, rounds=2)
    real = usage_rows.write_counts
    outcomes: list[object] = []

    def overtaken(token, counts, last_used, callers=None):
        if not outcomes:
            outcomes.append("B ran")
            in_thread(flush.flush).join()
        result = real(token, counts, last_used, callers)
        outcomes.append(result)
        return result

    monkeypatch.setattr(usage_rows, "write_counts", overtaken)
    flush.flush()
    assert outcomes[-1] is None  # A found its token already committed by B
    assert_exact(sent, fleet)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_the_same_cells_add_up(make_key):
    """Two processes shipping the same (key, hour, endpoint) at once: an upsert that adds."""
    key, _ = make_key()
    hour = int(time.time() // 3600)
    cell = {(key.pk, hour, "GET /api/v1/contacts/"): [5, 1]}
    barrier = threading.Barrier(4)

    def write(n: int):
        barrier.wait()
        usage_rows.write_counts(f"writer-{n}", cell, {key.pk: time.time()})

    for thread in [in_thread(write, n) for n in range(4)]:
        thread.join()
    row = UsageHour.objects.get(key=key)
    assert (row.requests, row.errors) == (20, 4)
    assert usage_rows.write_counts("writer-0", cell, {}) is None  # a token commits once
    row.refresh_from_db()
    assert (row.requests, row.errors) == (20, 4)


# --- a flush that dies halfway ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_flush_that_dies_before_its_commit_is_redone(api, backend, monkeypatch):
    """The failure is injected in the last step of the database write (after the hourly rows
    were upserted): the transaction rolls back and the next flush writes everything once."""
    fleet = make_fleet()
    sent = send_mix(api, fleet, rounds=2)
    crash_once(monkeypatch, usage_rows, "_advance_last_used")
    if backend == "redis":
        with pytest.raises(InjectedCrash):
            flush.flush()
        assert get_redis().scard(transport.HANDED_OVER) == 1  # the hand-over waits for recovery
    else:
        assert flush.flush()["waiting"] > 0  # the batch stays in-process
    assert UsageHour.objects.count() == 0
    assert UsageFlush.objects.count() == 0
    sent.merge(send_mix(api, fleet))  # traffic goes on meanwhile
    flush.flush()
    assert_exact(sent, fleet)


@pytest.mark.django_db
def test_a_flush_that_dies_after_its_commit_is_not_counted_twice(api, backend, monkeypatch):
    fleet = make_fleet()
    sent = send_mix(api, fleet, rounds=2)
    if backend == "redis":
        crash_once(monkeypatch, transport, "forget")  # rows committed, Redis not yet cleaned up
        with pytest.raises(InjectedCrash):
            flush.flush()
        assert get_redis().scard(transport.HANDED_OVER) == 1
    else:
        crash_once(
            monkeypatch, usage_rows, "write_counts", after=True
        )  # committed, but the reply is lost
        assert flush.flush()["waiting"] > 0
    assert UsageFlush.objects.count() == 1
    flush.flush()  # recovers: the token is known, nothing is added
    assert_exact(sent, fleet)
    if backend == "redis":
        assert get_redis().scard(transport.HANDED_OVER) == 0
        assert not get_redis().exists(transport.LIVE)


# --- Redis going away -------------------------------------------------------------------------


@pytest.mark.django_db
def test_redis_stopped_mid_run_costs_no_request_and_no_count(api, backend, settings):
    fleet = make_fleet()
    sent = send_mix(api, fleet)  # statuses asserted inside: 200/201/400/403/404/401, never 5xx
    recorder.ship()
    settings.REDIS_URL = DEAD_REDIS
    sent.merge(send_mix(api, fleet, rounds=2))
    shipped = recorder.ship()  # the shipper finds Redis gone: counts stay in-process
    assert shipped["shipped"] == 0 and shipped["pending"] > 0
    assert flush.flush()["error"] == "ConnectionError"
    sent.merge(send_mix(api, fleet))
    recorder.ship()
    settings.REDIS_URL = ENV_REDIS_URL if backend == "redis" else ""  # Redis is back
    flush.flush()
    assert_exact(sent, fleet)


@pytest.mark.django_db
def test_a_dead_redis_never_turns_a_request_into_a_500(api, make_key, settings):
    _, full = make_key({"contacts": ["view"]})
    settings.REDIS_URL = DEAD_REDIS
    for _ in range(3):
        assert api.get("/api/v1/contacts/", HTTP_X_API_KEY=full).status_code == 200
        assert api.get("/api/v1/leads/", HTTP_X_API_KEY=full).status_code == 403
        assert api.get("/api/v1/key/", HTTP_X_API_KEY=full).status_code == 200
    recorder.ship()
    assert flush.flush()["error"] == "ConnectionError"


@pytest.mark.django_db
def test_a_long_outage_spills_to_the_database_and_bounds_memory(api, make_key, settings, caplog):
    """Past half the buffer bound the shipper writes the (never sent) buffer to the database;
    past the bound a count is dropped with a warning instead of growing memory."""
    settings.API_KEYS = {**settings.API_KEYS, "USAGE_BUFFER_MAX_CELLS": 4}
    key, full = make_key({"contacts": ["view"]})
    settings.REDIS_URL = DEAD_REDIS
    paths = ["/api/v1/contacts/", "/api/v1/leads/", "/api/v1/opportunities/", "/api/v1/key/"]
    api.get(paths[0], HTTP_X_API_KEY=full)
    recorder.ship()  # 1 request now pending for Redis
    for path in paths:
        api.get(path, HTTP_X_API_KEY=full)
    recorder.ship()  # Redis still down, buffer at the bound: spilled to the database
    assert len(recorder.buffer) == 0
    assert stats.key_usage(key, include_unflushed=False)["total_requests"] == 4
    for path in [*paths, "/api/v1/contacts/1/"]:  # five cells into a buffer of four
        api.get(path, HTTP_X_API_KEY=full)
    recorder.ship()
    assert "usage buffer full: 1 requests were not counted" in caplog.text
    settings.REDIS_URL = ENV_REDIS_URL
    flush.flush()
    assert stats.key_usage(key)["total_requests"] == 1 + 4 + 4


# --- freshness and the shipper ------------------------------------------------------------------


@pytest.mark.django_db
def test_key_usage_includes_counts_not_yet_flushed(api, backend):
    if backend != "redis":
        pytest.skip("without Redis, unshipped counts live in other processes")
    fleet = make_fleet()
    sent = send_mix(api, fleet)
    recorder.ship()
    figures = stats.key_usage(fleet.website)
    assert figures["includes_unflushed"] is True
    assert figures["total_requests"] == sent.total(fleet.website)
    assert figures["last_used_at"] is not None
    assert stats.key_request_counts(fleet.website)["total_requests"] == 0  # rows only
    flush.flush()
    assert_exact(sent, fleet)


@pytest.mark.django_db(transaction=True)
def test_the_background_shipper_moves_counts_without_a_flush(api, backend, settings):
    settings.API_KEYS = {**settings.API_KEYS, "USAGE_SHIP_INTERVAL": 0.05}
    fleet = make_fleet()
    sent = send_mix(api, fleet)
    assert recorder._shipper.thread is not None and recorder._shipper.thread.daemon

    def shipped() -> bool:
        if backend == "redis":
            return len(recorder.buffer) == 0 and recorder._shipper.pending is None
        return UsageHour.objects.exists() and len(recorder.buffer) == 0

    for _ in range(400):  # waiting for another thread; no assertion on time
        if shipped():
            break
        time.sleep(0.025)
    assert shipped()
    recorder.reset()  # stop the thread before the final flush
    flush.flush()
    assert_exact(sent, fleet)


@pytest.mark.django_db
def test_counts_are_shipped_at_exit(api, backend, settings):
    # A shipper that would not ship before the process ends: only the exit hook moves the counts.
    settings.API_KEYS = {**settings.API_KEYS, "USAGE_SHIP_INTERVAL": 3600}
    fleet = make_fleet()
    sent = send_mix(api, fleet)
    assert len(recorder.buffer) > 0
    recorder._ship_at_exit()
    assert len(recorder.buffer) == 0
    flush.flush()
    assert_exact(sent, fleet)
