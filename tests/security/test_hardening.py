"""Protections beyond the basics: brute force, per-key limits, IP allowlists, browser use,
hostile input. All through the real API."""

import string
import threading

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditAction, AuditEntry
from keys import crypto, services
from keys.api import denials, protections
from tests.helpers import bearer

URL = "/api/v1/contacts/"
pytestmark = pytest.mark.django_db


def limit_failures(n):
    from django.conf import settings as dj

    return override_settings(API_KEYS={**dj.API_KEYS, "AUTH_FAILURES_PER_MINUTE": n})


# --- brute force ----------------------------------------------------------------------------


def test_a_flood_of_bad_keys_from_one_address_gets_429(api, make_key, django_assert_num_queries):
    _, good = make_key()
    bad = crypto.make_key().full
    with limit_failures(5):
        for _ in range(5):
            assert api.get(URL, REMOTE_ADDR="203.0.113.7", **bearer(bad)).status_code == 401
        response = api.get(URL, REMOTE_ADDR="203.0.113.7", **bearer(bad))
        assert response.status_code == 429
        assert response["Retry-After"].isdigit() and 1 <= int(response["Retry-After"]) <= 61
        assert "too many failed" in response.json()["detail"].lower()
        # Refused before any key lookup, even with a good key.
        with django_assert_num_queries(0):
            assert api.get(URL, REMOTE_ADDR="203.0.113.7", **bearer(good)).status_code == 429
        # Another address is not affected.
        assert api.get(URL, REMOTE_ADDR="203.0.113.8", **bearer(good)).status_code == 200


def test_a_rotating_forwarded_for_header_does_not_reset_the_bucket(api):
    bad = crypto.make_key().full
    with limit_failures(3):
        codes = [
            api.get(
                URL, REMOTE_ADDR="198.51.100.1", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}", **bearer(bad)
            ).status_code
            for i in range(6)
        ]
    assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}


def test_behind_a_trusted_proxy_the_proxy_seen_address_counts(api):
    bad = crypto.make_key().full
    with limit_failures(3), override_settings(TRUSTED_PROXY_COUNT=1):
        codes = [
            api.get(
                URL,
                REMOTE_ADDR="10.9.9.9",  # the proxy
                HTTP_X_FORWARDED_FOR=f"1.2.3.{i}, 192.0.2.50",  # client-forged part, then the proxy's
                **bearer(bad),
            ).status_code
            for i in range(5)
        ]
    assert codes[:3] == [401, 401, 401] and set(codes[3:]) == {429}


# --- per-key rate limit ---------------------------------------------------------------------


def test_per_key_rate_limit_gives_429_with_retry_after_and_counts_as_an_error(api, make_key, actor):
    key, full = make_key()
    services.key_update(key=key, data={"rate_limit_per_minute": 3}, actor=actor)
    codes = [api.get(URL, **bearer(full)).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    response = api.get(URL, **bearer(full))
    assert response["Retry-After"].isdigit()
    assert "3 requests per minute" in response.json()["detail"]


def test_fifty_concurrent_hits_at_limit_ten_let_ten_through():
    allowed = []
    barrier = threading.Barrier(50)

    def worker():
        barrier.wait()
        allowed.append(protections.hit("concurrency-test", 10, 60)[0])

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert allowed.count(True) == 10


# --- IP allowlist ---------------------------------------------------------------------------


def test_ip_allowlist_v4_and_v6(api, make_key, actor):
    key, full = make_key()
    services.key_update(key=key, data={"allowed_ips": "10.0.0.0/8\n2001:db8::/32"}, actor=actor)
    assert api.get(URL, REMOTE_ADDR="10.1.2.3", **bearer(full)).status_code == 200
    assert api.get(URL, REMOTE_ADDR="2001:db8::1", **bearer(full)).status_code == 200
    for _ in range(3):
        response = api.get(URL, REMOTE_ADDR="192.0.2.1", **bearer(full))
        assert response.status_code == 403
        assert "192.0.2.1" in response.json()["detail"]
    denials.write_pending()  # the shipper thread's job, off the request path
    denied = AuditEntry.objects.filter(action=AuditAction.ACCESS_DENIED, key_id=key.pk)
    assert denied.count() == 1 and denied.get().ip == "192.0.2.1"
    assert denied.get().after["refused"] == 3


def test_bad_allowlist_entry_is_refused(make_key, actor):
    key, _ = make_key()
    with pytest.raises(services.KeyValidationError, match="not an IP address"):
        services.key_update(key=key, data={"allowed_ips": "10.0.0.0/8\nnot-a-net"}, actor=actor)


# --- browser use ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_ORIGIN": "https://evil.example"},
        {"HTTP_SEC_FETCH_MODE": "cors"},
        {"HTTP_SEC_FETCH_SITE": "cross-site"},
    ],
)
def test_browser_requests_are_refused(api, make_key, headers):
    _, full = make_key()
    response = api.get(URL, **headers, **bearer(full))
    assert response.status_code == 403
    assert "server-to-server" in response.json()["detail"]


def test_no_key_can_be_opened_to_browser_origins(api, make_key, actor, admin_client):
    """The per-key "allowed origins" option is gone (it could not work: no CORS headers, and
    the manual says never in browser JavaScript); every browser request is refused."""
    key, full = make_key()
    with pytest.raises(services.KeyValidationError, match="Not an editable field"):
        services.key_update(key=key, data={"allowed_origins": "https://a.example"}, actor=actor)
    page = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
    assert "allowed_ips" in page and "origin" not in page.lower()
    same_site = {"HTTP_ORIGIN": "http://testserver", "HTTP_SEC_FETCH_SITE": "same-origin"}
    assert api.get(URL, **same_site, **bearer(full)).status_code == 403


# --- hostile input --------------------------------------------------------------------------


def _fixed_key(public_id: str, secret: str) -> str:
    body = f"icrm_{public_id}_{secret}"
    return body + crypto.checksum(body)


def hostile_inputs():
    # Deterministic values, so test ids are stable (and xdist workers agree on them).
    good = _fixed_key("HostileTest1", "s3cr3t" * 5 + "ab")
    body = good[:-6]
    unknown_valid_checksum = _fixed_key("HostileTest2", "Z" * 32)
    return [
        good + "\x00",
        good[:-1] + "\n",
        good.replace("_", "\t", 1),
        "icrm\u0456" + good[4:],  # Cyrillic look-alike letter
        good.replace("icrm", "\u0456crm"),
        good[:40],
        good + "A" * 20,
        body[:-1] + ("B" if body[-1] != "B" else "C") + good[-6:],
        "' OR 1=1 --",
        "icrm_'; DROP TABLE keys_apikey; --",
        "{{ settings.SECRET_KEY }}",
        "${jndi:ldap://x}",
        "%00%0d%0a",
        "\x1b[31m",
        "A" * 9000,
        unknown_valid_checksum,
    ]


@pytest.mark.parametrize("value", hostile_inputs())
@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_API_KEY"])
def test_hostile_values_get_a_clean_json_401(api, value, header):
    sent = f"Bearer {value}" if header == "HTTP_AUTHORIZATION" else value
    response = api.get(URL, **{header: sent})
    assert response.status_code in (400, 401)
    assert response["Content-Type"].startswith("application/json")
    text = response.content.decode()
    assert "Traceback" not in text
    if len(value) > 8:
        assert value not in text


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.text(min_size=0, max_size=300)
    | st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
)
def test_random_headers_never_cause_a_500_or_a_query(api, django_assert_num_queries, value):
    for header in ("HTTP_AUTHORIZATION", "HTTP_X_API_KEY"):
        with django_assert_num_queries(0):
            response = api.get(URL, **{header: value})
        assert response.status_code in (400, 401), (header, value)
        assert response["Content-Type"].startswith("application/json")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    position=st.integers(min_value=0, max_value=55),
    char=st.sampled_from(string.ascii_letters + string.digits),
)
def test_any_single_character_change_is_refused(api, make_key, position, char):
    _, full = make_key()
    changed = full[:position] + char + full[position + 1 :]
    if changed == full:
        return
    response = api.get(URL, **bearer(changed))
    assert response.status_code == 401


def test_underscored_header_is_not_a_credential(live_server, make_key):
    """Real servers drop header names with underscores, so X_Api_Key never smuggles a key."""
    import http.client
    from urllib.parse import urlsplit

    _, full = make_key()
    parts = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", URL, headers={"X_Api_Key": full})
    response = conn.getresponse()
    body = response.read().decode()
    assert response.status == 401 and "no api key provided" in body.lower()
