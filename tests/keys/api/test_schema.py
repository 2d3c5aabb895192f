"""The OpenAPI schema and Swagger UI, as an integrator meets them."""

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_schema_lists_both_key_headers_and_the_scope_of_each_operation(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
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
    for path, ops in paths.items():
        for op in ops.values():
            assert {"BearerKey": []} in op["security"] and {"HeaderKey": []} in op["security"], path


def test_swagger_ui_is_served_locally(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html
