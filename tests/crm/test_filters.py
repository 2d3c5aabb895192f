"""The API's filters, search and ordering do what the README says, on lists, on details and in
the CSV export — with or without a filter in the query string — and the serializers' fields
are the same on every request."""

import csv
import io

import pytest

from crm.models import Contact, Lead
from tests.helpers import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def full(make_key):
    return make_key(
        {"contacts": ["view", "create", "export"], "leads": ["view", "create", "edit"]}
    )[1]


@pytest.fixture
def people():
    return [
        Contact.objects.create(
            first_name="Ada", last_name="Lovelace", company="Acme", country="UK"
        ),
        Contact.objects.create(
            first_name="Alan", last_name="Turing", company="Globex", country="uk"
        ),
        Contact.objects.create(
            first_name="Grace", last_name="Hopper", company="ACME Corp", country="US"
        ),
    ]


def ids(response):
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def test_a_list_without_a_filter_has_every_row(api, full, people):
    assert ids(api.get("/api/v1/contacts/", **bearer(full))) == sorted(p.pk for p in people)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("company=acme", [0, 2]),  # icontains
        ("country=UK", [0, 1]),  # iexact
        ("company=acme&country=us", [2]),
        ("search=hopper", [2]),
        ("company=nobody", []),
        ("page=1&company=Globex", [1]),  # a filter after other parameters
    ],
)
def test_filters_narrow_the_list(api, full, people, query, expected):
    response = api.get(f"/api/v1/contacts/?{query}", **bearer(full))
    assert ids(response) == sorted(people[i].pk for i in expected)


def test_suffixed_and_typed_filters(api, full):
    cheap = Lead.objects.create(first_name="A", last_name="B", estimated_value=10)
    dear = Lead.objects.create(first_name="C", last_name="D", estimated_value=1000)
    assert ids(api.get("/api/v1/leads/?min_value=100", **bearer(full))) == [dear.pk]
    assert ids(api.get("/api/v1/leads/?max_value=100", **bearer(full))) == [cheap.pk]
    bad = api.get("/api/v1/leads/?min_value=lots", **bearer(full))
    assert bad.status_code == 400 and "min_value" in bad.json()


def test_a_filter_applies_to_a_detail_too(api, full, people):
    """DRF filters the queryset of a detail view: a contact outside the filter is a 404."""
    url = f"/api/v1/contacts/{people[0].pk}/"
    assert api.get(url, **bearer(full)).status_code == 200
    assert api.get(url + "?company=Acme", **bearer(full)).status_code == 200
    assert api.get(url + "?company=Globex", **bearer(full)).status_code == 404


def test_ordering(api, full, people):
    response = api.get("/api/v1/contacts/?ordering=-company", **bearer(full))
    assert [row["company"] for row in response.json()["results"]] == ["Globex", "Acme", "ACME Corp"]


def test_the_export_honours_the_same_filters(api, full, people):
    response = api.get("/api/v1/contacts/export/?country=uk", **bearer(full))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(int(r["id"]) for r in rows) == [people[0].pk, people[1].pk]


def test_every_request_gets_the_same_fields_and_validation(api, full, people):
    fields = {
        "id",
        "first_name",
        "last_name",
        "email",
        "phone",
        "company",
        "title",
        "city",
        "country",
        "created_at",
        "updated_at",
    }
    for _ in range(3):
        body = api.get(f"/api/v1/contacts/{people[0].pk}/", **bearer(full)).json()
        assert set(body) == fields
        refused = api.post(
            "/api/v1/contacts/", {"last_name": "X", "email": "nope"}, format="json", **bearer(full)
        )
        assert refused.status_code == 400
        assert set(refused.json()) == {"first_name", "email"}
    lead = api.post(
        "/api/v1/leads/",
        {"first_name": "L", "last_name": "M", "status": "qualified", "contact": people[1].pk},
        format="json",
        **bearer(full),
    )
    assert lead.status_code == 201 and lead.json()["contact"] == people[1].pk


@pytest.mark.parametrize("value", ["99999", "0", "-1"])
def test_filtering_by_a_contact_that_does_not_exist_is_an_empty_list(api, make_key, value):
    """A leads-only key must not learn which contact ids exist (a 400 "Select a valid choice"
    for an unknown id told it)."""
    ada = Contact.objects.create(first_name="Ada", last_name="Lovelace")
    Lead.objects.create(first_name="L", last_name="One", contact=ada)
    _, key = make_key({"leads": ["view", "export"]})
    response = api.get("/api/v1/leads/", {"contact": value}, **bearer(key))
    assert response.status_code == 200, response.content
    assert response.json()["results"] == []
    assert ids(api.get("/api/v1/leads/", {"contact": ada.pk}, **bearer(key))) == [
        Lead.objects.get().pk
    ]


@pytest.mark.parametrize("url", ["/api/v1/leads/", "/api/v1/opportunities/"])
@pytest.mark.parametrize("value", ["1.5", "abc", "1e3", "99999999999999999999999"])
def test_filtering_by_an_id_that_is_no_whole_number_is_a_400(api, make_key, url, value):
    _, key = make_key({"leads": ["view"], "opportunities": ["view"]})
    response = api.get(url, {"contact": value}, **bearer(key))
    assert response.status_code == 400, response.content
    assert "contact" in response.json()


@pytest.mark.parametrize(
    "url, query",
    [
        ("/api/v1/contacts/", "page=1&page=2"),
        ("/api/v1/contacts/", "country=UK&country=US"),
        ("/api/v1/contacts/", "ordering=id&ordering=-id"),
        ("/api/v1/contacts/export/", "formula_guard=on&formula_guard=off"),
    ],
)
def test_a_parameter_given_twice_is_a_400_naming_it(api, full, people, url, query):
    response = api.get(f"{url}?{query}", **bearer(full))
    assert response.status_code == 400, response.content
    name = query.split("=")[0]
    assert list(response.json()) == [name]
    assert "more than once" in response.json()[name][0]


def test_the_currency_filter_ignores_case(api, make_key):
    from crm.models import Opportunity

    usd = Opportunity.objects.create(name="A", currency="USD")
    Opportunity.objects.create(name="B", currency="EUR")
    _, key = make_key({"opportunities": ["view"]})
    for value in ("usd", "USD", "Usd"):
        assert ids(api.get("/api/v1/opportunities/", {"currency": value}, **bearer(key))) == [
            usd.pk
        ]


def test_leads_filter_by_creation_before_and_after(api, make_key):
    from datetime import UTC, datetime

    old = Lead.objects.create(first_name="Old", last_name="L")
    new = Lead.objects.create(first_name="New", last_name="L")
    Lead.objects.filter(pk=old.pk).update(created_at=datetime(2025, 1, 1, tzinfo=UTC))
    Lead.objects.filter(pk=new.pk).update(created_at=datetime(2026, 6, 1, tzinfo=UTC))
    _, key = make_key({"leads": ["view"]})
    cut = "2026-01-01T00:00:00Z"
    assert ids(api.get("/api/v1/leads/", {"created_before": cut}, **bearer(key))) == [old.pk]
    assert ids(api.get("/api/v1/leads/", {"created_after": cut}, **bearer(key))) == [new.pk]
