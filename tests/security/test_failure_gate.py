"""The failed-authentication limiter and the IP allowlist's refusals, replayed from the second
security review (items 1, 9 and 10) through the API."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import time_machine
from django.conf import settings as dj
from django.test import override_settings

from audit.models import AuditAction, AuditEntry
from crm_keys.net import client_ip, limiter_bucket, normalize_ip
from crm_keys.redis_client import get_redis
from keys import crypto, services
from keys.api import denials, protections
from tests.helpers import bearer, gunicorn, http, wait_for

URL = "/api/v1/contacts/"
pytestmark = pytest.mark.django_db


def limit_failures(n: int) -> Any:
    return override_settings(API_KEYS={**dj.API_KEYS, "AUTH_FAILURES_PER_MINUTE": n})


@pytest.fixture
def one_minute_window() -> Any:
    """The limiter counts in fixed one-minute windows: hold the clock, so a window boundary
    in the middle of a test cannot reset a count (the clock of the test process only)."""
    with time_machine.travel(time.time(), tick=False):
        yield


def a_fresh_minute() -> None:
    """For a server in another process, whose clock we cannot hold: start early in a window,
    so a flood of a few seconds stays in one. (Waits at most 15 s; nothing is timed.)"""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def flood(api: Any, n: int, **meta: str) -> list[int]:
    """``n`` requests with well-formed keys that match nothing (a fresh public id each)."""
    return [api.get(URL, **meta, **bearer(crypto.make_key().full)).status_code for _ in range(n)]


# --- item 1: a key that verifies is served while its address is throttled -------------------


@pytest.mark.usefixtures("one_minute_window")
def test_a_healthy_integration_survives_a_flood_from_its_address(
    api: Any, make_key: Any, django_assert_num_queries: Any
) -> None:
    _, healthy = make_key(name="Healthy")
    where = {"REMOTE_ADDR": "203.0.113.10"}
    with limit_failures(5):
        assert api.get(URL, **where, **bearer(healthy)).status_code == 200
        codes = flood(api, 60, **where)
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        # The healthy key keeps working, every time, in the middle of the flood.
        for _ in range(10):
            assert api.get(URL, **where, **bearer(healthy)).status_code == 200
            assert flood(api, 6, **where) == [429] * 6
        # The flood itself costs no query: refused before any lookup.
        with django_assert_num_queries(0):
            assert flood(api, 20, **where) == [429] * 20


@pytest.mark.usefixtures("one_minute_window")
def test_while_throttled_only_a_key_already_verified_from_there_goes_on(
    api: Any, make_key: Any, actor: Any, django_assert_num_queries: Any
) -> None:
    key, known = make_key(name="Known")
    _, never_used = make_key(name="Never used from here")
    where = {"REMOTE_ADDR": "203.0.113.11"}
    with limit_failures(3):
        assert api.get(URL, **where, **bearer(known)).status_code == 200
        flood(api, 4, **where)
        with django_assert_num_queries(0):
            # Not yet seen to verify from this address (or a wrong secret on a known id).
            assert api.get(URL, **where, **bearer(never_used)).status_code == 429
            wrong_secret = crypto.make_key(public_id=key.public_id).full
            assert api.get(URL, **where, **bearer(wrong_secret)).status_code == 429
        # Revoked meanwhile: told so once (one lookup), then throttled like the rest.
        services.key_revoke(key=key, actor=actor)
        response = api.get(URL, **where, **bearer(known))
        assert response.status_code == 401 and "revoked" in response.json()["detail"]
        with django_assert_num_queries(0):
            assert api.get(URL, **where, **bearer(known)).status_code == 429


# --- item 9: the limiter cannot be turned off by the address's spelling --------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("192.0.2.1:5678", "192.0.2.1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("unknown", None),
        ("", None),
        ("999.1.1.1", None),
    ],
)
def test_addresses_are_normalised(raw: str, normal: str | None) -> None:
    assert normalize_ip(raw) == normal


def test_buckets_ipv6_per_64_and_unparseable_together() -> None:
    assert limiter_bucket("2001:db8:1:2:aaaa::1") == limiter_bucket("2001:db8:1:2:bbbb::9")
    assert limiter_bucket("2001:db8:1:2::1") != limiter_bucket("2001:db8:1:3::1")
    assert limiter_bucket(None) == limiter_bucket(normalize_ip("garbage"))


@pytest.mark.parametrize(
    "spellings",
    [
        ["unknown", "not-an-ip", "-", "ip:port", "_hidden"],
        ["192.0.2.77:1", "192.0.2.77:2", "192.0.2.77:3", "192.0.2.77", "192.0.2.77:5"],
        ["::ffff:192.0.2.78", "192.0.2.78", "::ffff:c000:024e", "192.0.2.78", "192.0.2.78"],
        [f"2001:db8:7:7:{i}::1" for i in range(1, 6)],
        [f"fe80::7%eth{i}" for i in range(5)],
    ],
)
@pytest.mark.usefixtures("one_minute_window")
def test_the_limiter_counts_every_spelling_of_an_address(
    api: Any, make_key: Any, spellings: list[str]
) -> None:
    """Behind a proxy: the address it forwards decides the bucket, whatever its spelling."""
    with limit_failures(5), override_settings(TRUSTED_PROXY_COUNT=1):
        codes = [
            flood(api, 1, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=spelling)[0]
            for spelling in spellings * 2
        ]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}


def test_the_client_address_is_the_normalised_one(rf: Any) -> None:
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="::ffff:192.0.2.9")
    with override_settings(TRUSTED_PROXY_COUNT=1):
        assert client_ip(request) == "192.0.2.9"


# --- item 10: allowlist refusals are counted, not one audit entry each ----------------------


def test_allowlist_refusals_write_nothing_on_the_request_and_are_aggregated(
    api: Any, make_key: Any, actor: Any, django_assert_max_num_queries: Any
) -> None:
    key, full = make_key(name="Office only")
    services.key_update(key=key, data={"allowed_ips": "10.0.0.0/8"}, actor=actor)
    assert api.get(URL, REMOTE_ADDR="10.1.2.3", **bearer(full)).status_code == 200
    before = AuditEntry.objects.count()
    denials.reset()
    for i in range(300):
        with django_assert_max_num_queries(1):  # the key lookup (or the key cache), no write
            response = api.get(URL, REMOTE_ADDR=f"192.0.2.{i % 250}", **bearer(full))
        assert response.status_code == 403, i
        assert f"192.0.2.{i % 250}" in response.json()["detail"]
    assert AuditEntry.objects.count() == before  # nothing on the request path

    denials.write_pending()  # what the shipper thread does every second
    entries = AuditEntry.objects.filter(action=AuditAction.ACCESS_DENIED, key_id=key.pk)
    assert entries.count() == 1
    entry = entries.get()
    assert entry.after["refused"] == 300 and entry.after["range"] == "192.0.2.0/24"
    assert "300 requests from 192.0.2.0/24" in entry.message

    for _ in range(40):  # the same range later in the hour: counted, written when the hour ends
        api.get(URL, REMOTE_ADDR="192.0.2.9", **bearer(full))
    api.get(URL, REMOTE_ADDR="198.51.100.5", **bearer(full))  # a new range: its own entry
    denials.write_pending()
    assert entries.count() == 2
    denials.write_pending(final=True)  # the hour is over (or the process exits)
    assert entries.count() == 3
    assert sum(e.after["refused"] for e in entries) == 341


@pytest.mark.usefixtures("one_minute_window")
def test_allowlist_refusals_count_toward_the_failure_limit(
    api: Any, make_key: Any, actor: Any, django_assert_num_queries: Any
) -> None:
    key, full = make_key(name="Office only")
    services.key_update(key=key, data={"allowed_ips": "10.0.0.0/8"}, actor=actor)
    with limit_failures(5):
        codes = [
            api.get(URL, REMOTE_ADDR="192.0.2.1", **bearer(full)).status_code for _ in range(8)
        ]
        assert codes[:5] == [403] * 5 and set(codes[6:]) == {429}
        with django_assert_num_queries(0):
            assert api.get(URL, REMOTE_ADDR="192.0.2.1", **bearer(full)).status_code == 429
        assert api.get(URL, REMOTE_ADDR="10.0.0.1", **bearer(full)).status_code == 200


# --- through real HTTP, against gunicorn --------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_over_http_a_flood_does_not_take_down_a_healthy_key(tmp_path: Any, make_key: Any) -> None:
    """The review's setting: one egress address (a trusted proxy's X-Forwarded-For), a client
    with bad keys at 60 a minute and a healthy integration beside it."""
    _, healthy = make_key(name="Healthy integration")
    env = {
        "TRUSTED_PROXY_COUNT": "1",
        "API_KEY_AUTH_FAILURES_PER_MINUTE": "30",
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
    }
    egress = {"X-Forwarded-For": "198.51.100.201"}  # unique to this test: a bucket of its own

    def call(key: str) -> int:
        return http(base, URL, headers={**egress, "Authorization": f"Bearer {key}"})[0]

    with gunicorn(tmp_path, **env) as base:
        a_fresh_minute()
        assert call(healthy) == 200
        bad = [call(crypto.make_key().full) for _ in range(60)]
        assert bad[:30] == [401] * 30 and set(bad[30:]) == {429}
        served = []
        for _ in range(40):
            served.append(call(healthy))
            assert call(crypto.make_key().full) == 429
        assert served == [200] * 40


@pytest.mark.django_db(transaction=True)
def test_over_http_allowlist_refusals_are_written_off_the_request_in_aggregate(
    tmp_path: Any, make_key: Any, actor: Any
) -> None:
    key, full = make_key(name="Office only")
    services.key_update(key=key, data={"allowed_ips": "10.0.0.0/8"}, actor=actor)
    env = {
        "TRUSTED_PROXY_COUNT": "1",
        "API_KEY_USAGE_SHIP_INTERVAL": "0.2",
        "REDIS_URL": os.environ.get("REDIS_URL", ""),
    }
    with gunicorn(tmp_path, **env) as base:
        for i in range(300):
            status, _ = http(
                base,
                URL,
                headers={
                    "X-Forwarded-For": f"192.0.2.{i % 250}",
                    "Authorization": f"Bearer {full}",
                },
            )
            assert status in (403, 429)
        entries = AuditEntry.objects.filter(action=AuditAction.ACCESS_DENIED, key_id=key.pk)
        assert wait_for(lambda: entries.exists())  # written by the shipper thread
    # Stopped: the rest of the hour's count was written at exit.
    assert entries.count() <= 2
    assert sum(e.after["refused"] for e in entries) == 300


@pytest.mark.usefixtures("one_minute_window")
def test_with_redis_a_fresh_process_knows_the_keys_that_work_from_an_address(
    api: Any, make_key: Any, settings: Any
) -> None:
    """A web process started during a flood (a deploy, a recycled worker) never saw the
    healthy key work; with Redis it learns from the others when it throttles the address."""
    settings.REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"
    client = get_redis()
    for name in client.scan_iter("icrm:*203.0.113.12*"):  # what an earlier run left
        client.delete(name)
    _, healthy = make_key(name="Healthy")
    where = {"REMOTE_ADDR": "203.0.113.12"}
    with limit_failures(3):
        assert api.get(URL, **where, **bearer(healthy)).status_code == 200
        protections.failures.publish_known_good()  # the first process's shipper thread
        protections.failures.clear()  # now we are a fresh process: nothing in memory
        assert flood(api, 5, **where)[-1] == 429
        assert api.get(URL, **where, **bearer(healthy)).status_code == 200
        assert flood(api, 3, **where) == [429] * 3


@pytest.mark.django_db(transaction=True)
def test_over_http_two_workers_share_the_keys_that_work(tmp_path: Any, make_key: Any) -> None:
    """Gunicorn with two workers and Redis: the healthy key worked once, in one of them; during
    the flood both serve it."""
    redis_url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"
    bucket = "198.51.100.202"
    with override_settings(REDIS_URL=redis_url):
        client = get_redis()
        for name in client.scan_iter(f"icrm:*{bucket}*"):
            client.delete(name)
    _, healthy = make_key(name="Healthy integration")
    env = {
        "TRUSTED_PROXY_COUNT": "1",
        "API_KEY_AUTH_FAILURES_PER_MINUTE": "30",
        "API_KEY_USAGE_SHIP_INTERVAL": "0.2",
        "REDIS_URL": redis_url,
    }

    def call(key: str) -> int:
        headers = {"X-Forwarded-For": bucket, "Authorization": f"Bearer {key}"}
        return http(base, URL, headers=headers)[0]

    with gunicorn(tmp_path, workers=2, **env) as base:
        a_fresh_minute()
        assert call(healthy) == 200
        assert wait_for(lambda: client.exists(f"icrm:authok:{bucket}"))  # shared by its shipper
        bad = [call(crypto.make_key().full) for _ in range(60)]
        assert set(bad[31:]) == {429}
        served = [call(healthy) for _ in range(40)]
        assert served == [200] * 40
