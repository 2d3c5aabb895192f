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
