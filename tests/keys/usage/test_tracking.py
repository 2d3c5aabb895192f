"""Usage counts through the real API: exact after a flush, on both counter backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from keys.models import UsageHour
from keys.usage import flush, recorder, stats

from .traffic import assert_exact, make_fleet, send_mix

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def test_counts_are_exact_after_a_flush(api, backend, clock):
    fleet = make_fleet()
    sent = send_mix(api, fleet, rounds=3)
    assert UsageHour.objects.count() == 0  # nothing is written on the request path
    result = flush.flush()
    assert (
        result["requests"]
        == sum(sent.total(k) for k in (fleet.website, fleet.bi, fleet.revoked)) + sent.unknown
    )
    assert_exact(sent, fleet)
    # A flush with nothing new changes nothing.
    flush.flush()
    assert_exact(sent, fleet)
    # More traffic adds up.
    sent.merge(send_mix(api, fleet))
    flush.flush()
    assert_exact(sent, fleet)


def test_the_revoked_key_counts_its_401s_as_errors(api, backend, clock):
    fleet = make_fleet()
    sent = send_mix(api, fleet)
    flush.flush()
    figures = stats.key_usage(fleet.revoked)
    assert figures["total_requests"] == 4 == sent.total(fleet.revoked)
    assert figures["error_rate"] == 100.0


def test_the_request_path_neither_writes_nor_does_network_io(api, backend, monkeypatch):
    fleet = make_fleet()

    def no_redis_on_the_request_path():
        raise AssertionError("the request thread must not talk to Redis")

    monkeypatch.setattr(recorder, "get_redis", no_redis_on_the_request_path)
    with CaptureQueriesContext(connection) as queries:
        response = api.get(f"/api/v1/contacts/{fleet.contact_id}/", HTTP_X_API_KEY=fleet.bi_full)
    assert response.status_code == 200
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert writes == []
    assert len(recorder.buffer) == 1
