"""CSV export: the spreadsheet-formula guard by default, an explicit opt-out for machines."""

import csv
import io

import pytest

from crm.models import Contact
from keys.usage import flush, stats
from tests.helpers import bearer, usage_settings  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

EXPORT = "/api/v1/contacts/export/"
PHONE = "+1-555-787-2327"
FORMULA = '=HYPERLINK("http://evil.example")'


def rows(response):
    assert response.status_code == 200, response.content
    text = b"".join(response.streaming_content).decode()
    return {r["last_name"]: r for r in csv.DictReader(io.StringIO(text))}


@pytest.fixture
def exporter(make_key):
    Contact.objects.create(first_name="Ann", last_name="Phone", phone=PHONE)
    Contact.objects.create(first_name=FORMULA, last_name="Formula")
    return make_key({"contacts": ["export"]})


def test_the_guard_is_on_by_default(api, exporter):
    _, full = exporter
    exported = rows(api.get(EXPORT, **bearer(full)))
    assert exported["Phone"]["phone"] == "'" + PHONE
    assert exported["Formula"]["first_name"] == "'" + FORMULA
    assert rows(api.get(EXPORT, {"formula_guard": "on"}, **bearer(full))) == exported


def test_machines_can_turn_the_guard_off_and_get_the_data_unchanged(api, exporter):
    _, full = exporter
    exported = rows(api.get(EXPORT, {"formula_guard": "off"}, **bearer(full)))
    assert exported["Phone"]["phone"] == PHONE
    assert exported["Formula"]["first_name"] == FORMULA


@pytest.mark.parametrize("value", ["", "no", "OFF ", "0", "maybe"])
def test_an_unknown_guard_value_is_a_400_naming_the_parameter(api, exporter, value):
    _, full = exporter
    response = api.get(EXPORT, {"formula_guard": value}, **bearer(full))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "on" in response.json()["formula_guard"][0]


def test_an_unguarded_export_is_counted_like_any_export(api, exporter, usage_settings):  # noqa: F811
    key, full = exporter
    rows(api.get(EXPORT, **bearer(full)))
    rows(api.get(EXPORT, {"formula_guard": "off"}, **bearer(full)))
    rows(api.get(EXPORT.rstrip("/"), {"formula_guard": "off"}, **bearer(full)))
    flush.flush()
    endpoints = {e["endpoint"]: e["requests"] for e in stats.key_usage(key)["top_endpoints"]}
    assert endpoints == {"GET /api/v1/contacts/export/": 3}


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "text/csv",
        "*/*",
        "text/*",
        "text/csv; charset=utf-8",
        "application/json;q=0.9, text/csv",
        "text/html, */*;q=0.8",
    ],
)
def test_an_accept_that_admits_csv_gets_the_csv(api, exporter, accept):
    _, full = exporter
    headers = {"HTTP_ACCEPT": accept} if accept is not None else {}
    response = api.get(EXPORT, **headers, **bearer(full))
    assert response["Content-Type"].startswith("text/csv")
    assert set(rows(response)) == {"Phone", "Formula"}


@pytest.mark.parametrize(
    "accept", ["application/json", "text/html", "application/xml", "text/csv;q=0", "image/*"]
)
def test_an_accept_that_excludes_csv_is_a_json_406(api, exporter, accept):
    _, full = exporter
    response = api.get(EXPORT, HTTP_ACCEPT=accept, **bearer(full))
    assert response.status_code == 406
    assert response["Content-Type"].startswith("application/json")
    assert "text/csv" in response.json()["detail"]


def test_a_bad_filter_on_an_export_asking_for_csv_is_still_a_json_400(api, exporter):
    _, full = exporter
    response = api.get(EXPORT, {"ordering": "nope"}, HTTP_ACCEPT="text/csv", **bearer(full))
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "ordering" in response.json()
