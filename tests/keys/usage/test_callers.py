"""Who calls with a key: its clients and its recent errors, through the real API, exact after a
flush on both counter backends, bounded, sanitised, and shown by `apikey show` and the key page."""

from __future__ import annotations

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import call_command

from keys.models import KeyClient, RecentError, UsageHour
from keys.usage import callers, flush, prune, recorder
from tests.helpers import bearer

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
ZAPIER = "Zapier/1.0 (+https://zapier.com)"
CRON = "python-requests/2.32.3"


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=True) as traveller:
        yield traveller


def show(key) -> dict:
    out = io.StringIO()
    call_command("apikey", "show", key.public_id, "--json", stdout=out)
    return json.loads(out.getvalue())


def call(api, full, path="/api/v1/contacts/", *, agent=ZAPIER, ip="203.0.113.7", **kw):
    return api.get(path, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip, **bearer(full), **kw)


def test_two_clients_with_exact_counts(api, make_key, backend, clock):
    key, full = make_key({"contacts": ["view"]}, name="Zapier")
    for _ in range(3):
        assert call(api, full).status_code == 200
    clock.shift(timedelta(minutes=5))
    for _ in range(2):
        assert call(api, full, agent=CRON, ip="198.51.100.20").status_code == 200
    assert KeyClient.objects.count() == 0  # nothing is written on the request path
    flush.flush()
    clients = show(key)["clients"]
    assert [(c["ip"], c["user_agent"], c["requests"]) for c in clients] == [
        ("198.51.100.20", CRON, 2),  # most recently seen first
        ("203.0.113.7", ZAPIER, 3),
    ]
    zapier = clients[1]
    assert zapier["first_seen"] < zapier["last_seen"] < clients[0]["first_seen"]
    assert datetime.fromisoformat(clients[0]["last_seen"]) - NOW >= timedelta(minutes=5)
    # More traffic adds up after the next flush; a flush with nothing new changes nothing.
    call(api, full)
    flush.flush()
    flush.flush()
    assert {c["user_agent"]: c["requests"] for c in show(key)["clients"]} == {ZAPIER: 4, CRON: 2}
    assert sum(c.requests for c in KeyClient.objects.filter(key=key)) == sum(
        UsageHour.objects.filter(key=key).values_list("requests", flat=True)
    )


def test_clients_behind_a_trusted_proxy(api, make_key, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    key, full = make_key()
    call(api, full, ip="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 192.0.2.44")
    flush.flush()
    assert show(key)["clients"][0]["ip"] == "192.0.2.44"  # what our own proxy saw


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("Zapier\x00/1.0\r\nX-Injected: 1", "Zapier/1.0X-Injected: 1"),
        ("Tool/2 \u202egnp.exe", "Tool/2 gnp.exe"),  # bidi override removed
        ("Süß/1.0".encode().decode("latin-1"), "Süß/1.0"),  # UTF-8 bytes on the wire
        ("A" * 5000, "A" * 200),
        ("bot icrm_AbCdEfGhIjKl_0123456789abcdefghijklmnopqrstuv012345", "bot icrm_[redacted]"),
        ("", ""),
    ],
    ids=["control", "bidi", "utf8", "long", "key-shaped", "none"],
)
def test_user_agents_are_sanitised(api, make_key, sent, kept):
    key, full = make_key()
    assert call(api, full, agent=sent).status_code == 200
    flush.flush()
    assert KeyClient.objects.get(key=key).user_agent == kept


def test_clients_are_bounded_per_key_keeping_the_most_recent(api, make_key, settings, clock):
    settings.API_KEYS = {**settings.API_KEYS, "CLIENTS_PER_KEY": 3}
    key, full = make_key()
    other, other_full = make_key(name="Other")
    call(api, other_full, agent="other")
    for i in range(6):
        clock.shift(timedelta(seconds=10))
        call(api, full, agent=f"worker-{i}")
        if i % 2:
            flush.flush()
    flush.flush()
    assert [c["user_agent"] for c in show(key)["clients"]] == ["worker-5", "worker-4", "worker-3"]
    assert KeyClient.objects.filter(key=key).count() == 3
    assert KeyClient.objects.filter(key=other).count() == 1  # another key's clients stay


def test_two_403s_are_listed_with_their_permission_names(api, make_key, backend, clock):
    key, full = make_key({"contacts": ["view"]}, name="Zapier")
    assert call(api, full).status_code == 200  # successes are not errors
    assert call(api, full, "/api/v1/leads/").status_code == 403
    clock.shift(timedelta(minutes=1))
    response = api.post(
        "/api/v1/contacts/",
        {"first_name": "A"},
        format="json",
        HTTP_USER_AGENT=CRON,
        **bearer(full),
    )
    assert response.status_code == 403
    flush.flush()
    errors = show(key)["recent_errors"]
    assert [(e["status"], e["method"], e["endpoint"]) for e in errors] == [
        (403, "POST", "/api/v1/contacts/"),  # newest first
        (403, "GET", "/api/v1/leads/"),
    ]
    assert errors[0]["detail"] == "This API key does not have the contacts:create permission."
    assert "leads:view" in errors[1]["detail"]
    assert (errors[0]["ip"], errors[0]["user_agent"]) == ("127.0.0.1", CRON)
    assert (errors[1]["ip"], errors[1]["user_agent"]) == ("203.0.113.7", ZAPIER)
    assert datetime.fromisoformat(errors[1]["at"]) >= NOW


def test_errors_keep_the_sentence_never_the_request_body(api, make_key, backend):
    key, full = make_key({"contacts": ["view", "create"], "opportunities": ["create"]})
    secret = "hunter2-private-value"
    assert (
        api.post(
            "/api/v1/contacts/",
            {"email": f"{secret}@@", "last_name": "x" * 500},
            format="json",
            **bearer(full),
        ).status_code
        == 400
    )
    assert (
        api.post(
            "/api/v1/opportunities/",
            {"name": "Deal", "stage": secret, "amount": "1"},
            format="json",
            **bearer(full),
        ).status_code
        == 400
    )
    assert api.get("/api/v1/contacts/999999/", **bearer(full)).status_code == 404
    flush.flush()
    errors = show(key)["recent_errors"]
    assert [e["detail"] for e in errors] == [
        "No Contact matches the given query.",
        "Invalid input: stage (invalid_choice)",
        "Invalid input: first_name (required); last_name (max_length); email (invalid)",
    ]
    assert secret not in json.dumps(errors)
    assert not RecentError.objects.filter(detail__contains=secret).exists()


def test_a_revoked_keys_401s_are_its_errors(api, make_key, actor):
    from keys import services

    key, full = make_key()
    services.key_revoke(key=key, actor=actor)
    assert call(api, full).status_code == 401
    flush.flush()
    [error] = show(key)["recent_errors"]
    assert (error["status"], error["detail"]) == (401, "This API key has been revoked.")


def test_errors_are_bounded_per_key_keeping_the_latest(api, make_key, settings, clock):
    settings.API_KEYS = {**settings.API_KEYS, "RECENT_ERRORS_PER_KEY": 3}
    key, full = make_key()
    for i in range(7):
        clock.shift(timedelta(seconds=1))
        call(api, full, f"/api/v1/contacts/{900000 + i}/")
        if i == 2:
            flush.flush()
    flush.flush()
    assert [e["endpoint"] for e in show(key)["recent_errors"]] == ["/api/v1/contacts/{id}/"] * 3
    assert RecentError.objects.filter(key=key).count() == 3
    assert min(RecentError.objects.values_list("at", flat=True)) >= NOW + timedelta(seconds=5)


def test_the_buffer_bounds_new_clients_per_key(make_key, settings):
    settings.API_KEYS = {**settings.API_KEYS, "CLIENTS_PER_KEY": 2}
    key, _ = make_key()
    for i in range(20):
        callers.buffer.add((key.pk, "192.0.2.1", f"agent-{i}"), 1.0 + i, None)
    callers.buffer.add((key.pk, "192.0.2.1", "agent-0"), 100.0, None)  # a known one still counts
    taken = callers.buffer.take()
    assert len(taken.clients) == 8  # 4 x CLIENTS_PER_KEY new clients per ship
    assert taken.clients[(key.pk, "192.0.2.1", "agent-0")] == [2, 1.0, 100.0]


def test_a_full_buffer_drops_new_clients_and_says_so(settings, caplog):
    settings.API_KEYS = {**settings.API_KEYS, "USAGE_BUFFER_MAX_CELLS": 3}
    for key_id in range(1, 6):
        callers.buffer.add((key_id, "192.0.2.1", "agent"), 1.0, None)
    with caplog.at_level(logging.WARNING, logger="keys.usage.recorder"):
        batch = recorder._shipper.next_batch()
    assert len(batch.callers.clients) == 3
    assert "usage buffer full: 2 requests' clients not recorded" in caplog.text


def test_prune_forgets_clients_and_errors_past_the_retention(api, make_key, settings):
    settings.API_KEYS = {**settings.API_KEYS, "USAGE_RETENTION_DAYS": 90}
    key, full = make_key()
    with time_machine.travel(NOW - timedelta(days=91), tick=False):
        call(api, full, agent="gone")
        call(api, full, "/api/v1/leads/", agent="gone")
        flush.flush()
    with time_machine.travel(NOW, tick=False):
        call(api, full, agent="here")
        flush.flush()
        result = prune.prune()
    assert (result["clients"], result["errors"]) == (1, 1)
    assert [c["user_agent"] for c in show(key)["clients"]] == ["here"]
    assert show(key)["recent_errors"] == []


def test_the_key_page_shows_clients_and_recent_errors(admin_client, api, make_key):
    key, full = make_key({"contacts": ["view"]})
    call(api, full, agent="Zapier <script>alert(1)</script>")
    call(api, full, "/api/v1/leads/")
    flush.flush()
    html = admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").content.decode()
    assert 'id="key-clients-heading"' in html and 'id="key-errors-heading"' in html
    assert "203.0.113.7" in html
    assert "Zapier &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "This API key does not have the leads:view permission" in html


def test_the_key_page_costs_the_same_queries_with_many_clients(admin_client, api, make_key):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    quiet, quiet_full = make_key(name="Quiet")
    busy, busy_full = make_key(name="Busy")
    call(api, quiet_full)
    for i in range(30):
        call(api, busy_full, agent=f"worker-{i}")
        call(api, busy_full, f"/api/v1/contacts/{900000 + i}/", agent=f"worker-{i}")
    flush.flush()
    admin_client.get(f"/admin/keys/apikey/{quiet.pk}/change/")  # warm Django's own caches
    counts = []
    for key in (quiet, busy):
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(f"/admin/keys/apikey/{key.pk}/change/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert len(show(busy)["clients"]) == 30 and len(show(busy)["recent_errors"]) == 30


def test_apikey_show_text_lists_clients_and_errors(api, make_key):
    key, full = make_key({"contacts": ["view"]})
    call(api, full)
    call(api, full, "/api/v1/leads/", agent=CRON)
    flush.flush()
    out = io.StringIO()
    call_command("apikey", "show", key.public_id, stdout=out)
    text = out.getvalue()
    assert f"203.0.113.7  {ZAPIER}" in text and f"203.0.113.7  {CRON}" in text
    assert "403 GET /api/v1/leads/  This API key does not have the leads:view permission" in text
    assert "unused_scopes: []" in text
