"""Accept headers and methods over every URL under /api/: never a 5xx, always JSON (the Swagger
page's own GET is the one HTML answer); an Accept the route cannot answer is a JSON 406."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from crm.models import Contact, Lead, Opportunity
from crm.modules import MODULES

pytestmark = pytest.mark.django_db

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "OPTIONS", "TRACE", "DELETE"]
ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "application/json; q=0",
    "text/html",
    "text/csv",
    "text/*",
    "application/xml",
    "image/png",
    "application/yaml",
    "application/vnd.oai.openapi+json",
    "garbage",
    "text/html, application/json;q=0.9",
]


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def api_urls() -> list[str]:
    contact = Contact.objects.create(first_name="A", last_name="B")
    lead = Lead.objects.create(first_name="A", last_name="B")
    opportunity = Opportunity.objects.create(name="O")
    ids = {"contacts": contact.pk, "leads": lead.pk, "opportunities": opportunity.pk}
    urls = ["/api/", "/api/v1/", "/api/v1/key/", "/api/schema/", "/api/docs/", "/api/nothing/"]
    for module in MODULES:
        urls += [f"/api/v1/{module}/", f"/api/v1/{module}/export/"]
        urls.append(f"/api/v1/{module}/{ids[module]}/")
    return urls


def test_no_accept_header_or_method_makes_a_server_error(make_key, debug):
    full = make_key({m: ["view", "create", "edit", "delete", "export"] for m in MODULES})[1]
    client = APIClient(raise_request_exception=False)
    failures = []
    for url in api_urls():
        for method in METHODS:
            for accept in ACCEPTS:
                headers = {"HTTP_X_API_KEY": full}
                if accept is not None:
                    headers["HTTP_ACCEPT"] = accept
                response = client.generic(method, url, **headers)
                content_type = response.get("Content-Type", "")
                html_docs = url == "/api/docs/" and method in ("GET", "HEAD")
                if response.status_code >= 500 or not (
                    content_type.startswith("application/json")
                    or (html_docs and response.status_code == 200)
                    or (url.endswith("/export/") and response.status_code == 200)
                    or (url == "/api/schema/" and response.status_code == 200)
                    or (method == "HEAD" and response.status_code < 400)
                    or response.status_code == 204
                ):
                    failures.append((method, url, accept, response.status_code, content_type))
    assert failures == [], "\n".join(map(str, failures))


@pytest.mark.parametrize("accept", ["text/html", "text/csv", "application/xml", "image/png"])
def test_the_schema_refuses_an_accept_it_cannot_answer_with_a_json_406(api, accept):
    response = api.get("/api/schema/", HTTP_ACCEPT=accept)
    assert response.status_code == 406
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/*"])
def test_the_schema_is_json_for_json_or_anything(api, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = api.get("/api/schema/", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(
        ("application/vnd.oai.openapi+json", "application/json")
    )
    assert response.json()["openapi"].startswith("3.")


def test_options_on_the_docs_page_is_a_json_answer(api):
    response = api.options("/api/docs/")
    assert response.status_code in (200, 405)
    assert response["Content-Type"].startswith("application/json")
    if response.status_code == 405:
        assert "GET" in response["Allow"]
