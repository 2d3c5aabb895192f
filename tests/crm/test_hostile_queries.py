"""Hostile query strings on the lists and exports: malformed ordering, dates at the edges of
what Python and the database can hold, unknown parameters. Each is a 400 in JSON naming the
parameter and what it takes; never a 500, never a 200 that quietly ignores it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from crm.models import Contact
from tests.helpers import bearer

pytestmark = pytest.mark.django_db

ALL = {m: ["view", "export"] for m in ("contacts", "leads", "opportunities")}


@pytest.fixture
def key(make_key):
    return make_key(ALL)[1]


def _get(api, key, path, **params):
    query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
    return api.get(f"{path}?{query}", **bearer(key))


@pytest.mark.parametrize(
    "value", ["--id", "-", "id,,last_name", "nope", "-nope", "id,", " ", "---"]
)
@pytest.mark.parametrize("endpoint", ["", "export/"])
def test_malformed_ordering_is_a_400_naming_the_allowed_orderings(api, key, value, endpoint):
    response = _get(api, key, f"/api/v1/contacts/{endpoint}", ordering=value)
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    message = response.json()["ordering"][0]
    assert "id, last_name, company, created_at" in message


EXTREME_DATETIMES = [
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00+00:01",
    "9999-12-31T23:59:59-12:00",
    "9999-12-31T23:59:59.999999-00:01",
    "0000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "2026-01-01T00:00:00+99:00",
    "2026-01-01T00:00:00+24:00",
    "yesterday",
    "2026-01-01\x00",
    "\x00",
    "2026-01-01T00:00:00Z" + "0" * 500,
]
# Every date filter of every module, on the list and on the export.
DATETIME_FILTERS = [
    ("contacts", "created_after"),
    ("contacts", "created_before"),
    ("leads", "created_after"),
]
DATE_FILTERS = [("opportunities", "close_after"), ("opportunities", "close_before")]


@pytest.mark.parametrize("value", EXTREME_DATETIMES)
@pytest.mark.parametrize(("module", "parameter"), DATETIME_FILTERS)
@pytest.mark.parametrize("endpoint", ["", "export/"])
def test_an_extreme_datetime_is_a_400_naming_the_parameter_and_the_format(
    api, key, module, parameter, endpoint, value
):
    response = _get(api, key, f"/api/v1/{module}/{endpoint}", **{parameter: value})
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert list(response.json()) == [parameter]
    assert "ISO 8601" in response.json()[parameter][0]


@pytest.mark.parametrize(
    "value", ["0000-01-01", "10000-01-01", "2026-02-30", "2026-01-01T00:00", "\x00", "-1-01-01"]
)
@pytest.mark.parametrize(("module", "parameter"), DATE_FILTERS)
@pytest.mark.parametrize("endpoint", ["", "export/"])
def test_a_bad_date_is_a_400_naming_the_parameter_and_the_format(
    api, key, module, parameter, endpoint, value
):
    response = _get(api, key, f"/api/v1/{module}/{endpoint}", **{parameter: value})
    assert response.status_code == 400, response.content
    assert list(response.json()) == [parameter]
    assert "YYYY-MM-DD" in response.json()[parameter][0]


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00-05:00"]
)
def test_the_earliest_and_latest_instants_still_filter(api, key, value):
    Contact.objects.create(first_name="A", last_name="B")
    for endpoint in ("", "export/"):
        response = _get(api, key, f"/api/v1/contacts/{endpoint}", created_after=value)
        assert response.status_code == 200, response.content


# --- unknown parameters -------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["", "export/"])
@pytest.mark.parametrize("query", ["serch=acme", "Search=acme", "company_x=1", "format=json", "x"])
def test_an_unknown_parameter_is_a_400_listing_the_accepted_ones(api, key, endpoint, query):
    Contact.objects.create(first_name="A", last_name="B", company="Zeta")
    response = api.get(f"/api/v1/contacts/{endpoint}?{query}", **bearer(key))
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    name = query.partition("=")[0]
    (message,) = response.json()[name]
    assert "search" in message and "ordering" in message and "created_after" in message
    assert ("page_size" in message) == (endpoint == "")
    assert ("formula_guard" in message) == (endpoint == "export/")


def test_unknown_parameters_are_refused_only_after_the_key_is_checked(api, make_key):
    _, leads_only = make_key({"leads": ["view"]})
    assert api.get("/api/v1/contacts/?serch=acme").status_code == 401
    assert api.get("/api/v1/contacts/?serch=acme", **bearer(leads_only)).status_code == 403


def test_every_documented_parameter_is_accepted_and_every_accepted_one_documented(api, key):
    schema = api.get("/api/schema/").json()
    checked = 0
    for path, operations in schema["paths"].items():
        operation = operations.get("get")
        if operation is None or "{" in path:
            continue
        documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        for name in documented:
            response = api.get(f"{path}?{name}=", **bearer(key))
            if response["Content-Type"].startswith("application/json"):
                assert "Unknown" not in str(response.json()), (path, name)
        bogus = api.get(f"{path}?zz_not_a_parameter=1", **bearer(key))
        if path != "/api/v1/key/":
            assert bogus.status_code == 400, path
            accepted = bogus.json()["zz_not_a_parameter"][0].split(": ", 1)[1].rstrip(".")
            assert set(accepted.split(", ")) == documented, path
            checked += 1
    assert checked == 6


def test_known_parameters_still_filter(api, key):
    Contact.objects.create(first_name="A", last_name="B", company="Acme")
    Contact.objects.create(first_name="C", last_name="D", company="Zeta")
    response = api.get("/api/v1/contacts/?search=acme&page=1&page_size=10", **bearer(key))
    assert [r["company"] for r in response.json()["results"]] == ["Acme"]
    export = api.get("/api/v1/contacts/export/?company=zeta&formula_guard=off", **bearer(key))
    assert export.status_code == 200
    assert b"Zeta" in b"".join(export.streaming_content)
