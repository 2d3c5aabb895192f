"""The scope matrix: for every module x action, exactly that scope is needed."""

import csv
import io

import pytest

from crm.models import Contact, Lead, Opportunity
from crm.modules import ACTIONS, MODULES
from tests.helpers import bearer

pytestmark = pytest.mark.django_db

PAYLOADS = {
    "contacts": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
    "leads": {"first_name": "Alan", "last_name": "Turing", "company": "Bletchley", "status": "new"},
    "opportunities": {"name": "Big deal", "amount": "1000.00", "stage": "proposal"},
}
MODELS = {"contacts": Contact, "leads": Lead, "opportunities": Opportunity}


def make_row(module):
    data = dict(PAYLOADS[module])
    data.pop("status", None)
    return MODELS[module].objects.create(**data)


def call(api, full, module, action):
    row = make_row(module)
    base = f"/api/v1/{module}/"
    headers = bearer(full)
    if action == "view":
        return api.get(f"{base}{row.pk}/", **headers)
    if action == "create":
        return api.post(base, PAYLOADS[module], format="json", **headers)
    if action == "edit":
        return api.patch(
            f"{base}{row.pk}/",
            {"first_name" if module != "opportunities" else "name": "Changed"},
            format="json",
            **headers,
        )
    if action == "delete":
        return api.delete(f"{base}{row.pk}/", **headers)
    if action == "export":
        return api.get(f"{base}export/", **headers)
    raise AssertionError(action)


CASES = [(m, a) for m in MODULES for a in ACTIONS]


@pytest.mark.parametrize(("module", "action"), CASES)
def test_key_with_exactly_that_scope_is_allowed(api, make_key, module, action):
    _, full = make_key({module: [action]})
    response = call(api, full, module, action)
    assert 200 <= response.status_code < 300, response.content


@pytest.mark.parametrize(("module", "action"), CASES)
def test_key_with_every_other_scope_is_refused_with_403_naming_it(api, make_key, module, action):
    others = {m: [a for a in ACTIONS if (m, a) != (module, action)] for m in MODULES}
    _, full = make_key(others)
    response = call(api, full, module, action)
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"This API key does not have the {module}:{action} permission."
    )


def test_list_is_view(api, make_key):
    _, full = make_key({"leads": ["view"]})
    make_row("leads")
    response = api.get("/api/v1/leads/", **bearer(full))
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_put_is_edit(api, make_key):
    _, full = make_key({"contacts": ["edit"]})
    row = make_row("contacts")
    response = api.put(
        f"/api/v1/contacts/{row.pk}/",
        {"first_name": "X", "last_name": "Y"},
        format="json",
        **bearer(full),
    )
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.first_name == "X"


def test_export_returns_csv_rows_matching_the_filter(api, make_key):
    _, full = make_key({"leads": ["export"]})
    Lead.objects.create(first_name="Q1", last_name="A", status="qualified", company="Acme")
    Lead.objects.create(first_name="Q2", last_name="B", status="qualified", company="Globex")
    Lead.objects.create(first_name="N1", last_name="C", status="new", company="Acme")
    response = api.get("/api/v1/leads/export/?status=qualified", **bearer(full))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["first_name"] for r in rows) == ["Q1", "Q2"]
    assert set(rows[0]) >= {"id", "first_name", "status", "company"}


def test_export_neutralises_spreadsheet_formulas(api, make_key):
    _, full = make_key({"contacts": ["export"]})
    Contact.objects.create(first_name='=HYPERLINK("http://evil")', last_name="X")
    body = b"".join(api.get("/api/v1/contacts/export/", **bearer(full)).streaming_content).decode()
    assert "'=HYPERLINK" in body


def test_list_filters_and_paginates(api, make_key):
    _, full = make_key({"opportunities": ["view"]})
    for i in range(60):
        Opportunity.objects.create(
            name=f"Deal {i}", amount=i * 100, stage="proposal" if i % 2 else "negotiation"
        )
    response = api.get("/api/v1/opportunities/?stage=proposal&min_amount=1000", **bearer(full))
    data = response.json()
    assert data["count"] == len([i for i in range(60) if i % 2 and i * 100 >= 1000])
    page = api.get(
        "/api/v1/opportunities/?page_size=10&page=2&ordering=amount", **bearer(full)
    ).json()
    assert len(page["results"]) == 10
    assert page["results"][0]["name"] == "Deal 10"


def test_bad_filter_value_is_a_400_not_a_500(api, make_key):
    _, full = make_key({"opportunities": ["view"]})
    response = api.get(
        "/api/v1/opportunities/?min_amount=lots&close_after=yesterday", **bearer(full)
    )
    assert response.status_code == 400


def test_invalid_payload_is_a_400(api, make_key):
    _, full = make_key({"contacts": ["create"]})
    response = api.post(
        "/api/v1/contacts/", {"email": "not-an-email"}, format="json", **bearer(full)
    )
    assert response.status_code == 400
    assert "first_name" in response.json()


def test_every_api_view_declares_its_module():
    """Deny by default: walk the resolver; each key-authenticated view names a module."""
    from django.urls import get_resolver

    from keys.api.permissions import HasKeyScope, HasValidKey

    def walk(patterns, prefix=""):
        for p in patterns:
            if hasattr(p, "url_patterns"):
                yield from walk(p.url_patterns, prefix + str(p.pattern))
            else:
                yield prefix + str(p.pattern), p.callback

    seen = 0
    for route, callback in walk(get_resolver().url_patterns):
        if not route.startswith("api/"):
            continue
        view_class = getattr(callback, "cls", None)
        assert view_class is not None, route
        if route in ("api/schema/", "api/docs/"):
            continue  # public documentation, no key involved
        perms = view_class.permission_classes
        assert perms and all(p in (HasKeyScope, HasValidKey) for p in perms), route
        if HasKeyScope in perms:
            assert getattr(view_class, "key_module", None) in MODULES, route
        seen += 1
    assert seen >= len(MODULES) * 3
