"""Sections "admin", "grace" and "flush": the admin key list over a realistic usage history,
the grace-expiry job, and the usage flush."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from unittest import mock

from bench.data import Fixture, bulk_crm_keys

ENDPOINTS = [
    "GET /api/v1/contacts/",
    "GET /api/v1/contacts/{id}/",
    "POST /api/v1/leads/",
    "GET /api/v1/opportunities/export/",
    "PATCH /api/v1/leads/{id}/",
]


def _usage_rows(key_ids: list[int], days: int, rng: random.Random) -> Iterator[Any]:
    from django.utils import timezone

    from keys.models import UsageHour

    this_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=h) for h in range(days * 24)]
    for key_id in key_ids:
        endpoints = rng.sample(ENDPOINTS, rng.choice((2, 3)))
        base = rng.randint(5, 400)
        for hour in hours:
            for endpoint in endpoints:
                requests = max(1, int(base * rng.uniform(0.2, 1.8)))
                yield UsageHour(
                    key_id=key_id,
                    hour=hour,
                    endpoint=endpoint,
                    requests=requests,
                    errors=int(requests * rng.choice((0, 0, 0, 0.01, 0.05))),
                )


def fill_usage(key_ids: list[int], days: int, *, seed: int = 6, batch: int = 5000) -> int:
    """Hourly usage rows for ``key_ids`` over ``days`` days, with bulk_create in batches."""
    from django.db import transaction
    from django.utils import timezone

    from keys.models import APIKey, UsageHour

    rng = random.Random(seed)
    total = 0
    chunk: list[Any] = []
    for row in _usage_rows(key_ids, days, rng):
        chunk.append(row)
        if len(chunk) >= batch:
            with transaction.atomic():
                UsageHour.objects.bulk_create(chunk)
            total += len(chunk)
            chunk = []
    if chunk:
        UsageHour.objects.bulk_create(chunk)
        total += len(chunk)
    APIKey.objects.filter(pk__in=key_ids).update(last_used_at=timezone.now())
    return total


def _time_page(client: Any, url: str, repeat: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    try:
        response = client.get(url)
    except Exception as exc:  # a page that crashes is reported, the other pages still run
        return {"url": url, "available": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    if response.status_code != 200:
        return {"url": url, "status": response.status_code, "available": False}
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        client.get(url)
    return {
        "url": url,
        "status": response.status_code,
        "available": True,
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "queries": len(ctx.captured_queries),
        "bytes": len(response.content),
    }


def admin(fx: Fixture, *, busy_keys: int, days: int, repeat: int, log: Callable) -> dict:
    from django.contrib import admin as django_admin
    from django.contrib.auth import get_user_model
    from django.test import Client

    from keys.models import APIKey, UsageHour

    busy = [k for k in fx.filler_key_ids[:busy_keys]]
    t0 = time.perf_counter()
    rows = fill_usage(busy, days)
    log(
        f"  {rows:,} usage rows for {len(busy)} keys x {days} days in {time.perf_counter() - t0:.1f}s"
    )
    result: dict[str, Any] = {
        "keys": APIKey.objects.count(),
        "usage_rows": UsageHour.objects.count(),
        "busy_keys": len(busy),
        "days": days,
    }
    user_model = get_user_model()
    user = user_model.objects.filter(username="bench-admin").first()
    if user is None:
        user = user_model.objects.create_superuser("bench-admin", "bench@example.com", "bench-pass")
    client = Client()
    client.force_login(user)
    model_admin = django_admin.site._registry.get(APIKey)
    if model_admin is None:
        log("  admin: APIKey is not registered in the admin yet -> not available")
        result["available"] = False
        result["reason"] = "APIKey is not registered in the admin"
        return result
    per_page = model_admin.list_per_page
    last_page = max(1, -(-result["keys"] // per_page))
    pages = {
        "list": "/admin/keys/apikey/",
        "list_last_page": f"/admin/keys/apikey/?p={last_page}",
        "search": "/admin/keys/apikey/?q=integration+1",
        "change_busy_key": f"/admin/keys/apikey/{busy[0]}/change/" if busy else None,
    }
    result["available"] = True
    result["list_per_page"] = per_page
    for name, url in pages.items():
        if url is None:
            continue
        page = _time_page(client, url, repeat)
        result[name] = page
        if page.get("available"):
            log(f"  admin {name}: {page['median_ms']} ms, {page['queries']} queries ({url})")
        else:
            log(f"  admin {name}: {page.get('error') or 'HTTP ' + str(page.get('status'))} ({url})")
    return result


def grace(fx: Fixture, *, due: int, log: Callable) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from audit.models import AuditEntry
    from keys import jobs
    from keys.models import APIKey

    fn = getattr(jobs, "revoke_grace_ended", None)
    if fn is None:
        log("  grace: keys.jobs.revoke_grace_ended is not available yet")
        return {"available": False, "reason": "keys.jobs.revoke_grace_ended does not exist yet"}

    def make_due(n: int, tag: str) -> list[int]:
        rng = random.Random(n)
        replacements = bulk_crm_keys(
            n, rng=rng, prefix=f"{tag} new", per_row=lambda i: {"revoked_at": None}
        )
        now = timezone.now()
        return bulk_crm_keys(
            n,
            rng=rng,
            prefix=f"{tag} old",
            per_row=lambda i: {
                "replaced_by_id": replacements[i],
                "grace_ends_at": now - timedelta(seconds=1 + i % 3600),
                "revoked_at": None,
                "revoked_by_label": "",
            },
        )

    t0 = time.perf_counter()
    old_ids = make_due(due, "grace")
    log(f"  grace: {due:,} due keys set up in {time.perf_counter() - t0:.1f}s")
    audit_before = AuditEntry.objects.count()
    t0 = time.perf_counter()
    returned = fn()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    fn()
    second = time.perf_counter() - t0
    recorded = APIKey.objects.filter(pk__in=old_ids, revoked_at__isnull=False).count()
    audits = AuditEntry.objects.count() - audit_before
    # Query shape on a small batch: does the job's query count grow with the number of keys?
    small_ids = make_due(100, "grace-small")
    with CaptureQueriesContext(connection) as ctx:
        fn()
    small_recorded = APIKey.objects.filter(pk__in=small_ids, revoked_at__isnull=False).count()
    result = {
        "available": True,
        "due_keys": due,
        "seconds": round(first, 3),
        "keys_per_s": round(due / first, 1) if first else None,
        "second_run_seconds": round(second, 3),
        "revocations_recorded": recorded,
        "audit_entries": audits,
        "returned": repr(returned)[:200],
        "queries_for_100_due": len(ctx.captured_queries),
        "recorded_of_100": small_recorded,
    }
    log(
        f"  grace: {due:,} due keys in {first:.2f}s ({recorded:,} recorded, {audits:,} audit entries); "
        f"second run {second:.3f}s; {len(ctx.captured_queries)} queries for 100 due keys"
    )
    return result


# --- Usage flush ------------------------------------------------------------------------------


def usage_total(key_ids: list[int]) -> int:
    from django.db.models import Sum

    from keys.models import UsageHour

    return UsageHour.objects.filter(key_id__in=key_ids).aggregate(s=Sum("requests"))["s"] or 0


def flush_until(key_ids: list[int], expected: int, *, timeout: float) -> tuple[int, float, int]:
    """Ship this process's buffer and flush until the rows for ``key_ids`` hold ``expected``
    requests or ``timeout`` passes. Returns (total seen, seconds, flush calls)."""
    from keys.usage import flush as usage_flush
    from keys.usage import recorder

    t0 = time.perf_counter()
    calls = 0
    total = usage_total(key_ids)
    while total < expected and time.perf_counter() - t0 < timeout:
        recorder.ship()
        usage_flush.flush()
        calls += 1
        total = usage_total(key_ids)
        if total < expected:
            time.sleep(0.2)
    return total, time.perf_counter() - t0, calls


def flush(fx: Fixture, *, requests: int, keys: int, log: Callable) -> dict:
    from django.test import RequestFactory
    from django.urls import resolve

    from keys.models import APIKey
    from keys.usage import flush as usage_flush
    from keys.usage import recorder

    key_objs = list(APIKey.objects.filter(pk__in=fx.filler_key_ids[-keys:]))
    key_ids = [k.pk for k in key_objs]
    paths = [
        f"/api/v1/contacts/{fx.contact_id}/",
        "/api/v1/contacts/",
        "/api/v1/leads/",
    ]
    factory = RequestFactory()
    pool = []
    for n, key in enumerate(key_objs):
        for path in paths:
            # As the authentication leaves it: the key, the client address, a User-Agent.
            request = factory.get(path, HTTP_USER_AGENT=f"integration-{n % 7}/1.0")
            request.resolver_match = resolve(path)
            request.api_key = key
            request.api_key_presented = True
            request.api_client_ip = f"203.0.113.{n % 200}"
            pool.append(request)
    statuses = [200] * 19 + [403]
    n_pool = len(pool)
    # The same calls without recording clients and errors (counts only), measured first and
    # flushed away before the exactness check below: what "who is calling" adds per request.
    baseline_n = max(requests // 5, 1)
    with mock.patch.object(recorder, "record_caller", lambda *args, **kwargs: None):
        c0 = time.process_time()
        for i in range(baseline_n):
            recorder.record_request(pool[i % n_pool], statuses[i % 20])
        counts_only_cpu_s = time.process_time() - c0
    recorder.ship()  # whatever B's rounds left in the buffer is not part of this measurement
    usage_flush.flush()
    before = usage_total(key_ids)
    c0 = time.process_time()
    for i in range(baseline_n):
        recorder.record_request(pool[i % n_pool], statuses[i % 20])
    with_callers_cpu_s = time.process_time() - c0
    recorder.ship()
    usage_flush.flush()
    before += baseline_n
    t0 = time.perf_counter()
    for i in range(requests):
        recorder.record_request(pool[i % n_pool], statuses[i % 20])
    record_s = time.perf_counter() - t0
    log(f"  flush: recorded {requests:,} requests over {len(key_ids):,} keys in {record_s:.2f}s")
    log(
        f"  flush: record_request CPU per call, counts only "
        f"{counts_only_cpu_s / baseline_n * 1e6:.2f} µs, with clients/errors "
        f"{with_callers_cpu_s / baseline_n * 1e6:.2f} µs"
    )
    t0 = time.perf_counter()
    recorder.ship()
    ship_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    returned = usage_flush.flush()
    flush_s = time.perf_counter() - t0
    total, extra_s, extra_calls = flush_until(key_ids, before + requests, timeout=60)
    counted = total - before
    result = {
        "available": True,
        "requests": requests,
        "keys": len(key_ids),
        "record_us_per_request": round(record_s / requests * 1e6, 2),
        # CPU µs per call of record_request over the same mix, counts only vs. with the key's
        # client and errors (what issue 15 added to the request path).
        "record_cpu_us_counts_only": round(counts_only_cpu_s / baseline_n * 1e6, 2),
        "record_cpu_us_with_callers": round(with_callers_cpu_s / baseline_n * 1e6, 2),
        "ship_seconds": round(ship_s, 3),
        "flush_seconds": round(flush_s, 3),
        "flush_returned": repr(returned)[:200],
        "extra_flush_calls": extra_calls,
        "extra_wait_seconds": round(extra_s, 3),
        "counted": counted,
        "exact": counted == requests,
    }
    log(
        f"  flush: ship {ship_s:.3f}s, flush {flush_s:.3f}s; counted {counted:,} "
        f"of {requests:,} ({'exact' if counted == requests else 'NOT exact'})"
    )
    return result
