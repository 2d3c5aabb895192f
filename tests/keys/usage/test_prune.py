"""Retention: old hourly rows go, in batches, and lifetime totals stay exact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from keys.models import PrunedUsage, UnknownKeyUsageHour, UsageFlush, UsageHour
from keys.usage import prune, stats
from keys.usage import rows as usage_rows

from .traffic import forget_stray_usage_rows

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)


def count(key_id, hour: datetime, endpoint: str, requests: int, errors: int = 0) -> None:
    usage_rows.write_counts(
        uuid.uuid4().hex, {(key_id, usage_rows.hour_index(hour), endpoint): [requests, errors]}, {}
    )


def test_prune_deletes_old_rows_in_batches_and_keeps_lifetime_totals(make_key, settings):
    forget_stray_usage_rows()
    settings.API_KEYS = {**settings.API_KEYS, "USAGE_RETENTION_DAYS": 90}
    key, _ = make_key()
    with time_machine.travel(NOW, tick=False):
        old = NOW - timedelta(days=91)
        for i in range(5):  # five old hours on two endpoints
            count(key.pk, old - timedelta(hours=i), "GET /api/v1/contacts/", 10, 1)
            count(key.pk, old - timedelta(hours=i), "POST /api/v1/contacts/", 2, 2)
        count(None, old, "", 7)
        count(key.pk, NOW - timedelta(days=89), "GET /api/v1/contacts/", 5)
        count(key.pk, NOW, "GET /api/v1/leads/", 3, 3)
        before = stats.key_usage(key)
        assert before["total_requests"] == 5 * 12 + 5 + 3

        assert prune.prune(batch_size=3) == {
            "usage_rows": 10,
            "unknown_key_rows": 1,
            "clients": 0,
            "errors": 0,
            "flush_tokens": 0,
        }
        assert UsageHour.objects.count() == 2
        assert UnknownKeyUsageHour.objects.count() == 0
        assert {(p.endpoint, p.requests, p.errors) for p in PrunedUsage.objects.all()} == {
            ("GET /api/v1/contacts/", 50, 5),
            ("POST /api/v1/contacts/", 10, 10),
        }
        after = stats.key_usage(key)
        for figure in ("total_requests", "total_errors", "requests_24h", "top_endpoints"):
            assert after[figure] == before[figure]
        assert after["top_endpoints"][0] == {
            "endpoint": "GET /api/v1/contacts/",
            "requests": 55,
            "errors": 5,
        }
        assert stats.key_request_counts(key)["total_requests"] == before["total_requests"]

        assert prune.prune()["usage_rows"] == 0  # a second run finds nothing
        assert stats.key_usage(key)["total_requests"] == before["total_requests"]


def test_prune_forgets_old_flush_tokens_only(make_key):
    forget_stray_usage_rows()
    with time_machine.travel(NOW - timedelta(days=30), tick=False):
        UsageFlush.objects.create(token="old")
    UsageFlush.objects.create(token="recent")
    with time_machine.travel(NOW, tick=False):
        assert prune.prune()["flush_tokens"] == 1
    assert list(UsageFlush.objects.values_list("token", flat=True)) == ["recent"]
