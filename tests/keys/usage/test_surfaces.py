"""Where the figures show: the CLI, GET /api/v1/key/, the admin key page (chart and table),
the CSV download, the key list's aggregate; and what they cost in queries."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.core.management import call_command
from django.template.loader import render_to_string

from keys.usage import chart, flush, recorder, stats
from tests.helpers import bearer

from .traffic import make_fleet, send_mix

pytestmark = pytest.mark.django_db


@pytest.fixture
def flushed(api):
    with time_machine.travel(datetime(2026, 3, 2, 10, 15, tzinfo=UTC), tick=True):
        fleet = make_fleet()
        sent = send_mix(api, fleet, rounds=2)
        flush.flush()
        yield fleet, sent


def test_apikey_show_json_has_the_figures(flushed):
    fleet, sent = flushed
    out = io.StringIO()
    call_command("apikey", "show", fleet.website.public_id, "--json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["usage"]["total_requests"] == sent.total(fleet.website)
    assert data["usage"]["requests_24h"] == sent.total(fleet.website)
    assert len(data["usage"]["hourly"]) == 168
    assert data["usage"]["top_endpoints"][0] == {
        "endpoint": "GET /api/v1/contacts/",
        "requests": 8,
        "errors": 0,
    }


def test_apikey_show_text_summarises_the_figures(flushed):
    fleet, sent = flushed
    out = io.StringIO()
    call_command("apikey", "show", str(fleet.bi.pk), stdout=out)
    text = out.getvalue()
    assert re.search(rf"total requests: {sent.total(fleet.bi)}\n", text)
    assert "DELETE /api/v1/contacts/{id}/" in text
    assert '"hourly"' not in text


def test_the_key_endpoint_reports_its_own_counts(api, flushed):
    fleet, sent = flushed
    data = api.get("/api/v1/key/", **bearer(fleet.website_full)).json()
    assert data["total_requests"] == sent.total(fleet.website)
    assert data["requests_24h"] == sent.total(fleet.website)


def test_the_admin_key_page_shows_figures_chart_and_top_endpoints(admin_client, flushed):
    fleet, sent = flushed
    page = admin_client.get(f"/admin/keys/apikey/{fleet.website.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html
    assert 'role="img"' in html and "<title id=" in html and "<desc id=" in html
    assert "<code>GET /api/v1/contacts/{id}/</code>" in html
    assert f"<dd>{sent.total(fleet.website)}</dd>" in html


def test_the_usage_panel_links_the_csv_when_it_is_wired(flushed):
    fleet, _ = flushed
    html = render_to_string(
        "admin/keys/apikey/_usage_panel.html",
        {"usage": stats.key_usage(fleet.bi), "original": fleet.bi},
    )
    assert "usage-chart" in html
    assert "Top endpoints" in html
    assert f'href="/admin/keys/apikey/{fleet.bi.pk}/usage.csv"' in html


def test_csv_download_has_every_hourly_row(admin_client, flushed):
    fleet, sent = flushed
    response = admin_client.get(f"/admin/keys/apikey/{fleet.website.pk}/usage.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f"usage-icrm_{fleet.website.public_id}.csv" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["hour_utc", "endpoint", "requests", "errors"]
    got = {(r[1], int(r[2]), int(r[3])) for r in rows[1:]}
    assert got == {(e, r, er) for e, (r, er) in sent.by_endpoint(fleet.website).items()}
    assert {r[0] for r in rows[1:]} == {"2026-03-02T10:00:00Z"}


def test_csv_download_needs_permission(staff_client, flushed):
    fleet, _ = flushed
    response = staff_client().get(f"/admin/keys/apikey/{fleet.website.pk}/usage.csv")
    assert response.status_code == 403


def test_query_counts(flushed, django_assert_max_num_queries):
    fleet, _ = flushed
    ids = [fleet.website.pk, fleet.bi.pk, fleet.revoked.pk]
    with django_assert_max_num_queries(1):
        stats.requests_24h_by_key(ids)
    with django_assert_max_num_queries(3):
        stats.key_usage(fleet.website)
    with django_assert_max_num_queries(2):
        stats.key_request_counts(fleet.website)


def test_a_flush_costs_a_fixed_number_of_queries_whatever_the_traffic(api, make_key, backend):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    keys = [make_key({"contacts": ["view"]}, name=f"k{i}") for i in range(12)]
    for _, full in keys:
        for path in ("/api/v1/contacts/", "/api/v1/leads/", "/api/v1/contacts/1/"):
            api.get(path, **bearer(full))
    with CaptureQueriesContext(connection) as queries:
        flush.flush()
    # UsageFlush, lock keys, one upsert of hourly rows, last used, one upsert of clients, one
    # insert of errors, and one trim of each to its per-key bound (plus savepoints)
    assert len([q for q in queries if "SAVEPOINT" not in q["sql"]]) <= 8


def test_chart_scales_and_describes_the_data():
    hourly = [
        {
            "hour": f"2026-03-0{1 + i // 24}T{i % 24:02d}:00:00+00:00",
            "requests": i,
            "errors": i // 10,
        }
        for i in range(48)
    ]
    svg = str(chart.usage_chart(hourly, chart_id="k1"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'aria-labelledby="k1-title k1-desc"' in svg
    assert "1,128 requests and 92 errors in 48 hours" in svg
    assert "var(--link-fg" in svg and "var(--error-fg" in svg and "currentColor" in svg
    assert svg.count("<rect") == 47 + 38 + 2  # request bars, error bars, legend
    assert ">50<" in svg  # y axis top: 47 rounded up to a readable 50
    empty = str(chart.usage_chart([{**h, "requests": 0, "errors": 0} for h in hourly]))
    assert "No requests in the last 7 days" in empty


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (1, 1), (3, 5), (47, 50), (100, 100), (101, 200), (12001, 20000)]
)
def test_nice_ceiling(value, top):
    assert chart.nice_ceiling(value) == top


@pytest.mark.parametrize(
    ("method", "route", "label"),
    [
        ("GET", "api/v1/^contacts/(?P<id>[0-9]+)/$", "GET /api/v1/contacts/{id}/"),
        ("GET", "api/v1/^contacts/export/$", "GET /api/v1/contacts/export/"),
        ("POST", "api/v1/^leads/$", "POST /api/v1/leads/"),
        ("GET", "api/v1/key/", "GET /api/v1/key/"),
        ("GET", "api/v1/things/<int:pk>/", "GET /api/v1/things/{pk}/"),
    ],
)
def test_endpoint_labels_use_route_patterns(method, route, label):
    assert recorder.endpoint_label(method, route) == label


def test_made_up_methods_share_one_label(api, make_key):
    key, full = make_key({"contacts": ["view"]})
    for method in ("BREW", "PROPFIND", "X" * 300):
        api.generic(method, "/api/v1/contacts/", **bearer(full))
    flush.flush()
    assert stats.key_usage(key)["top_endpoints"] == [
        {"endpoint": "OTHER /api/v1/contacts/", "requests": 3, "errors": 3}
    ]
