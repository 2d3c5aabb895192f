"""Bad input to the CRM API: a clear 4xx in JSON, never a 500, nothing lost."""

import json

import pytest

from crm.models import Contact
from tests.helpers import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def full(make_key):
    return make_key({"contacts": ["view", "create", "edit"]})[1]


def test_invalid_json_body(api, full):
    response = api.post(
        "/api/v1/contacts/", data="{not json", content_type="application/json", **bearer(full)
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_oversized_body_is_a_json_400(api, full):
    body = json.dumps({"first_name": "x" * (3 * 1024 * 1024), "last_name": "y"})
    response = api.post(
        "/api/v1/contacts/", data=body, content_type="application/json", **bearer(full)
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert not Contact.objects.exists()


def test_absurd_field_length(api, full):
    response = api.post(
        "/api/v1/contacts/",
        {"first_name": "x" * 5000, "last_name": "y"},
        format="json",
        **bearer(full),
    )
    assert response.status_code == 400
    assert "first_name" in response.json()


def test_unicode_round_trips(api, full):
    payload = {"first_name": "Zoë 🚀", "last_name": "Ångström-李", "company": "Ünïcödé GmbH"}
    created = api.post("/api/v1/contacts/", payload, format="json", **bearer(full)).json()
    fetched = api.get(f"/api/v1/contacts/{created['id']}/", **bearer(full)).json()
    assert {k: fetched[k] for k in payload} == payload


def test_form_encoded_body_is_refused_clearly(api, full):
    response = api.post(
        "/api/v1/contacts/",
        {"first_name": "A", "last_name": "B"},
        format="multipart",
        **bearer(full),
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    "query",
    ["page=abc", "page=99999", "page_size=-1", "ordering=password", "created_after=2026-13-45"],
)
def test_odd_query_parameters(api, full, query):
    response = api.get(f"/api/v1/contacts/?{query}", **bearer(full))
    assert response.status_code in (200, 400, 404)
    assert response["Content-Type"].startswith("application/json")


def test_non_numeric_id_is_404(api, full):
    response = api.get("/api/v1/contacts/abc/", **bearer(full))
    assert response.status_code == 404
    assert response.json()["detail"]


def test_wrong_date_on_an_opportunity(api, make_key):
    _, key = make_key({"opportunities": ["create"]})
    response = api.post(
        "/api/v1/opportunities/",
        {"name": "X", "close_date": "2026-02-30", "probability": 150},
        format="json",
        **bearer(key),
    )
    assert response.status_code == 400
    assert set(response.json()) >= {"close_date", "probability"}
