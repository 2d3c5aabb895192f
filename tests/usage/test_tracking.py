"""Usage counts through the real API: exact after a flush, on both counter backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keys import selectors, usage
from keys.models import UnknownKeyUsageHour, UsageHour

from .traffic import Fleet, Sent, make_fleet, send_mix

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def expected_top(sent: Sent, key) -> list[dict]:
    rows = sorted(sent.by_endpoint(key).items(), key=lambda item: (-item[1][0], item[0]))
    return [{"endpoint": e, "requests": r, "errors": er} for e, (r, er) in rows[:10]]


def assert_exact(sent: Sent, fleet: Fleet) -> None:
    """Every figure of every key equals what was sent; so does the unknown-key counter."""
    this_hour = usage.hour_of(datetime.now(UTC))
    for key in (fleet.website, fleet.bi, fleet.revoked):
        key.refresh_from_db()
        total, errors = sent.total(key), sent.errors(key)
        figures = selectors.key_usage(key)
        assert figures["total_requests"] == total
        assert figures["requests_24h"] == total
        assert figures["total_errors"] == errors
        assert figures["errors_24h"] == errors
        assert figures["error_rate"] == round(100 * errors / total, 2)
        assert figures["top_endpoints"] == expected_top(sent, key)
        assert len(figures["hourly"]) == 168
        assert figures["hourly"][-1] == {
            "hour": this_hour.isoformat(),
            "requests": total,
            "errors": errors,
        }
        assert sum(h["requests"] for h in figures["hourly"]) == total
        assert key.last_used_at is not None
        assert key.last_used_at <= datetime.now(UTC)
        rows = {
            (r.endpoint, r.requests, r.errors)
            for r in UsageHour.objects.filter(key=key, hour=this_hour)
        }
        assert rows == {(e, r, er) for e, (r, er) in sent.by_endpoint(key).items()}
        assert selectors.key_request_counts(key) == {
            "total_requests": total,
            "requests_24h": total,
        }
    assert selectors.requests_24h_by_key([fleet.website.pk, fleet.bi.pk, fleet.revoked.pk]) == {
        k.pk: sent.total(k) for k in (fleet.website, fleet.bi, fleet.revoked)
    }
    assert selectors.unknown_key_requests()["requests_24h"] == sent.unknown
    assert UnknownKeyUsageHour.objects.get(hour=this_hour).requests == sent.unknown


def test_counts_are_exact_after_a_flush(api, backend, clock):
    fleet = make_fleet()
    sent = send_mix(api, fleet, rounds=3)
    assert UsageHour.objects.count() == 0  # nothing is written on the request path
    result = usage.flush()
    assert (
        result["requests"]
        == sum(sent.total(k) for k in (fleet.website, fleet.bi, fleet.revoked)) + sent.unknown
    )
    assert_exact(sent, fleet)
    # A flush with nothing new changes nothing.
    usage.flush()
    assert_exact(sent, fleet)
    # More traffic adds up.
    sent.merge(send_mix(api, fleet))
    usage.flush()
    assert_exact(sent, fleet)


def test_the_revoked_key_counts_its_401s_as_errors(api, backend, clock):
    fleet = make_fleet()
    sent = send_mix(api, fleet)
    usage.flush()
    figures = selectors.key_usage(fleet.revoked)
    assert figures["total_requests"] == 4 == sent.total(fleet.revoked)
    assert figures["error_rate"] == 100.0


def test_the_request_path_neither_writes_nor_does_network_io(api, backend, monkeypatch):
    fleet = make_fleet()

    def no_redis_on_the_request_path():
        raise AssertionError("the request thread must not talk to Redis")

    monkeypatch.setattr(usage, "get_redis", no_redis_on_the_request_path)
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/contacts/{fleet.contact_id}/", HTTP_X_API_KEY=fleet.bi_full)
    assert response.status_code == 200
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert len(usage.buffer) == 1
