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


def test_oversized_body_is_a_json_413(api, full):
    body = json.dumps({"first_name": "x" * (3 * 1024 * 1024), "last_name": "y"})
    response = api.post(
        "/api/v1/contacts/", data=body, content_type="application/json", **bearer(full)
    )
    assert response.status_code == 413
    assert response["Content-Type"].startswith("application/json")
    assert "too large" in response.json()["detail"]
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
    ("query", "parameter"),
    [
        ("page=abc", "page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("page=²", "page"),
        ("page_size=abc", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=-1", "page_size"),
        ("page_size=501", "page_size"),
        ("page_size=", "page_size"),
        ("ordering=password", "ordering"),
        ("ordering=last_name,-nope", "ordering"),
        ("ordering=", "ordering"),
        ("created_after=2026-13-45", "created_after"),
        ("created_before=yesterday", "created_before"),
        ("search=a%00b", "search"),
        ("company=a%00b", "company"),
    ],
)
def test_a_malformed_query_parameter_is_a_400_naming_it(api, full, query, parameter):
    response = api.get(f"/api/v1/contacts/?{query}", **bearer(full))
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/json")
    assert list(response.json()) == [parameter]
    assert response.json()[parameter][0]


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("leads", "min_value=lots", "min_value"),
        ("leads", "status=bogus", "status"),
        ("leads", "contact=abc", "contact"),
        ("opportunities", "close_after=2026-02-30", "close_after"),
        ("opportunities", "max_amount=1e999", "max_amount"),
    ],
)
def test_malformed_filters_of_other_modules(api, make_key, path, query, parameter):
    _, key = make_key({path: ["view", "export"]})
    for url in (f"/api/v1/{path}/?{query}", f"/api/v1/{path}/export/?{query}"):
        response = api.get(url, **bearer(key))
        assert response.status_code == 400, (url, response.content)
        assert parameter in response.json()


def test_well_formed_paging_and_ordering(api, full):
    for i in range(3):
        Contact.objects.create(first_name=f"F{i}", last_name=f"L{i}")
    page = api.get("/api/v1/contacts/?page=2&page_size=2&ordering=-last_name", **bearer(full))
    assert page.status_code == 200
    assert [r["last_name"] for r in page.json()["results"]] == ["L0"]
    assert api.get("/api/v1/contacts/?ordering=company,-id", **bearer(full)).status_code == 200
    past = api.get("/api/v1/contacts/?page=9", **bearer(full))
    assert past.status_code == 404 and "page" in past.json()["detail"].lower()


@pytest.mark.parametrize("value", [123, 1.5, True, ["a"], {"a": 1}])
def test_a_non_string_where_a_string_is_declared_is_a_400(api, full, value):
    response = api.post(
        "/api/v1/contacts/", {"first_name": value, "last_name": "B"}, format="json", **bearer(full)
    )
    assert response.status_code == 400
    assert list(response.json()) == ["first_name"]
    assert not Contact.objects.exists()


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


@pytest.mark.parametrize("value", [2.999, 1.5, True, False, "1.5", "2.999", [1], {"id": 1}])
@pytest.mark.parametrize("field", ["contact", "lead"])
def test_a_link_takes_only_a_whole_number(api, make_key, value, field):
    from crm.models import Lead, Opportunity

    Contact.objects.create(first_name="A", last_name="B")
    Contact.objects.create(first_name="C", last_name="D")
    Lead.objects.create(first_name="A", last_name="B")
    Lead.objects.create(first_name="C", last_name="D")
    _, key = make_key({"opportunities": ["create"]})
    response = api.post(
        "/api/v1/opportunities/", {"name": "X", field: value}, format="json", **bearer(key)
    )
    assert response.status_code == 400, response.content
    assert set(response.json()) == {field}
    assert not Opportunity.objects.exists()


@pytest.mark.parametrize("written", [int, str, float])
def test_a_link_by_id_still_works(api, make_key, written):
    contact = Contact.objects.create(first_name="A", last_name="B")
    _, key = make_key({"opportunities": ["create"]})
    value = written(contact.pk)  # 7, "7" or 7.0, as probability takes them
    response = api.post(
        "/api/v1/opportunities/", {"name": "X", "contact": value}, format="json", **bearer(key)
    )
    assert response.status_code == 201, response.content
    assert response.json()["contact"] == contact.pk


@pytest.mark.parametrize(
    "charset, encoding",
    [
        ("latin-1", "latin-1"),
        ("ISO-8859-1", "latin-1"),
        ("utf-16", "utf-16"),
        ("nonsense", "utf-8"),
    ],
)
def test_a_body_declared_in_another_charset_than_utf8_is_a_415(api, full, charset, encoding):
    body = json.dumps({"first_name": "Zoë", "last_name": "B"}, ensure_ascii=False).encode(encoding)
    response = api.post(
        "/api/v1/contacts/",
        data=body,
        content_type=f"application/json; charset={charset}",
        **bearer(full),
    )
    assert response.status_code == 415, response.content
    assert response["Content-Type"].startswith("application/json")
    assert "UTF-8" in response.json()["detail"]
    assert not Contact.objects.exists()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8"])
def test_a_body_declared_as_utf8_is_read(api, full, charset):
    body = json.dumps({"first_name": "Zoë", "last_name": "B"}, ensure_ascii=False).encode()
    response = api.post(
        "/api/v1/contacts/",
        data=body,
        content_type=f"application/json; charset={charset}",
        **bearer(full),
    )
    assert response.status_code == 201, response.content
    assert Contact.objects.get().first_name == "Zoë"


@pytest.mark.parametrize(
    "body, words",
    [
        (b'{"first_name": "A", "last_name": "B", "x": ' + b"9" * 5000 + b"}", "digits"),
        (b'\xef\xbb\xbf{"first_name": "A", "last_name": "B"}', "byte order mark"),
        (b'{"first_name": "A", ', "not valid JSON"),
    ],
)
def test_a_body_json_cannot_read_gets_a_plain_sentence(api, full, body, words):
    response = api.post(
        "/api/v1/contacts/", data=body, content_type="application/json", **bearer(full)
    )
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert words in detail
    for internal in ("sys.", "set_int_max_str_digits", "utf-8-sig", "JSON parse error -"):
        assert internal not in detail
    assert not Contact.objects.exists()


@pytest.mark.parametrize("value, stored", [("EUR", "EUR"), ("eur", "EUR"), ("Gbp", "GBP")])
def test_a_currency_is_three_letters_stored_in_capitals(api, make_key, value, stored):
    _, key = make_key({"opportunities": ["create"]})
    response = api.post(
        "/api/v1/opportunities/", {"name": "X", "currency": value}, format="json", **bearer(key)
    )
    assert response.status_code == 201, response.content
    assert response.json()["currency"] == stored


@pytest.mark.parametrize("value", ["eu", "E", "", "EU1", "€€€", "US D"])
def test_a_currency_that_is_not_three_letters_is_a_400(api, make_key, value):
    from crm.models import Opportunity

    _, key = make_key({"opportunities": ["create"]})
    response = api.post(
        "/api/v1/opportunities/", {"name": "X", "currency": value}, format="json", **bearer(key)
    )
    assert response.status_code == 400, response.content
    assert "ISO 4217" in response.json()["currency"][0]
    assert not Opportunity.objects.exists()
