"""The OpenAPI schema and Swagger UI, as an integrator meets them."""

import pytest
import yaml

from crm.modules import MODULES

pytestmark = pytest.mark.django_db

LIST_PARAMS = {"page", "page_size"}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def operations(schema):
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_yaml_on_request(client, schema):
    response = client.get("/api/schema/?format=yaml")
    assert response.status_code == 200
    assert yaml.safe_load(response.content)["paths"] == schema["paths"]


def test_schema_lists_both_key_headers_and_the_scope_of_each_operation(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["BearerKey"]["scheme"] == "bearer"
    assert schemes["HeaderKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "X-API-Key: <key>",
    }
    paths = schema["paths"]
    assert paths["/api/v1/contacts/"]["get"]["x-required-scope"] == "contacts:view"
    assert paths["/api/v1/contacts/"]["post"]["x-required-scope"] == "contacts:create"
    assert paths["/api/v1/leads/{id}/"]["patch"]["x-required-scope"] == "leads:edit"
    assert (
        paths["/api/v1/opportunities/{id}/"]["delete"]["x-required-scope"] == "opportunities:delete"
    )
    assert (
        paths["/api/v1/opportunities/export/"]["get"]["x-required-scope"] == "opportunities:export"
    )
    assert "x-required-scope" not in paths["/api/v1/key/"]["get"]
    for path, _, op in operations(schema):
        assert {"BearerKey": []} in op["security"] and {"HeaderKey": []} in op["security"], path


def test_the_introduction_explains_authentication_errors_and_limits(schema):
    intro = schema["info"]["description"]
    assert "## Authentication" in intro
    for needed in (
        "Authorization: Bearer icrm_",
        "X-API-Key: icrm_",
        "icrm_<12-character public id>_<32-character secret><6-character checksum>",
        "Deprecation: true",
        "Sunset",
        "X-API-Key-Notice",
        "RateLimit-Remaining",
        "Retry-After",
        "formula_guard=off",
    ):
        assert needed in intro, needed


def test_descriptions_are_written_for_integrators(schema):
    for path, method, op in operations(schema):
        text = op["description"]
        assert "key_module" not in text and "crm.modules" not in text and "``" not in text
        assert op["summary"], (method, path)
        scope = op.get("x-required-scope")
        assert f"**Key permission:** `{scope}`." in text if scope else "any valid key" in text
    contacts = schema["paths"]["/api/v1/contacts/"]
    assert contacts["get"]["summary"] == "List contacts"
    assert contacts["post"]["summary"] == "Create a contact"
    opportunity = schema["paths"]["/api/v1/opportunities/{id}/"]
    assert opportunity["get"]["summary"] == "Get an opportunity"


def test_one_tag_per_module(schema):
    tags = {t["name"] for t in schema["tags"]}
    assert {m.label for m in MODULES.values()} <= tags
    for path, _, op in operations(schema):
        assert len(op["tags"]) == 1, path
        module = path.split("/")[3]
        expected = MODULES[module].label if module in MODULES else "Your key"
        assert op["tags"] == [expected], path


def test_every_operation_documents_its_errors(schema):
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["detail"]
    for path, method, op in operations(schema):
        responses = op["responses"]
        for code in ("401", "403", "429", "503"):
            assert responses[code]["content"]["application/json"]["schema"] == error, (
                method,
                path,
                code,
            )
        assert "WWW-Authenticate" in responses["401"]["headers"]
        assert {"Retry-After", "RateLimit-Reset"} <= set(responses["429"]["headers"])
        if "{id}" in path:
            assert "404" in responses, (method, path)
        query = [p for p in op.get("parameters", []) if p["in"] == "query"]
        assert ("400" in responses) == bool(query or op.get("requestBody")), (method, path)
        success = [c for c in responses if c.startswith("2")]
        assert success and all("RateLimit-Remaining" in responses[c]["headers"] for c in success), (
            method,
            path,
        )


def test_exports_list_the_filters_of_the_list(schema):
    for module in MODULES:
        listed = {p["name"] for p in schema["paths"][f"/api/v1/{module}/"]["get"]["parameters"]}
        export = schema["paths"][f"/api/v1/{module}/export/"]["get"]
        exported = {p["name"] for p in export["parameters"]}
        assert exported == (listed - LIST_PARAMS) | {"formula_guard"}, module
        assert {"search", "ordering"} <= exported
        guard = next(p for p in export["parameters"] if p["name"] == "formula_guard")
        assert guard["schema"]["enum"] == ["off", "on"] and guard["schema"]["default"] == "on"
        assert "text/csv" in export["responses"]["200"]["content"]


def test_swagger_ui_is_served_locally(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html


@pytest.mark.parametrize("value", ["xml", "html", "", "yaml2"])
def test_a_schema_format_it_cannot_write_is_a_400_naming_the_formats(client, value):
    response = client.get(f"/api/schema/?format={value}")
    if value == "":
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.content
    assert "yaml" in response.json()["format"][0]


def test_component_descriptions_are_written_for_integrators(schema):
    for name in ("Contact", "Lead", "Opportunity", "KeyInfo"):
        description = schema["components"]["schemas"][name].get("description", "")
        assert description, name
        for note in ("DRF", "introspect", "selectors", "the view returns", "serializer"):
            assert note not in description, (name, description)


def test_every_query_parameter_is_described(schema):
    missing = [
        (path, p["name"])
        for path, method, op in operations(schema)
        for p in op.get("parameters", [])
        if not p.get("description")
    ]
    assert missing == []


def test_the_currency_field_is_documented(schema):
    currency = schema["components"]["schemas"]["Opportunity"]["properties"]["currency"]
    assert currency["pattern"] == "^[A-Za-z]{3}$"
    assert "ISO 4217" in currency["description"]


def test_406_411_and_415_are_documented(schema):
    for path, method, op in operations(schema):
        if not path.startswith("/api/v1/"):
            continue
        assert "406" in op["responses"], (path, method)
        if op.get("requestBody"):
            assert {"411", "415"} <= set(op["responses"]), (path, method)
    introduction = schema["info"]["description"]
    assert all(f"| {code} |" in introduction for code in (406, 411, 415))


def test_put_is_described_as_what_it_does(schema, api, make_key):
    """PUT keeps the optional fields it is not sent (DRF's update): the schema says so
    instead of calling it a replacement."""
    from crm.models import Contact
    from tests.helpers import bearer

    put = schema["paths"]["/api/v1/contacts/{id}/"]["put"]
    assert "Replace" not in put["summary"]
    assert "keep their values" in put["description"]
    contact = Contact.objects.create(first_name="A", last_name="B", title="CEO")
    _, key = make_key({"contacts": ["edit"]})
    body = {"first_name": "C", "last_name": "D"}
    response = api.put(f"/api/v1/contacts/{contact.pk}/", body, format="json", **bearer(key))
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "CEO"
