"""The API at its edges: methods a route does not have, a missing trailing slash, and JSON for
every response under /api/ (in debug too)."""

import pytest
from rest_framework.test import APIClient

from crm.models import Contact
from tests.helpers import bearer

pytestmark = pytest.mark.django_db

LIST = "/api/v1/contacts/"


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def client_500():
    """A client that gets the response of an unhandled exception instead of re-raising it."""
    return APIClient(raise_request_exception=False)


def assert_json(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    assert response.json()["detail"]


# --- 1. a method the route does not have is 405, whatever the key -------------------------


@pytest.mark.parametrize(
    "credentials",
    ["view-only", "full", "none", "unknown"],
)
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("delete", LIST, {"GET", "POST"}),
        ("put", LIST, {"GET", "POST"}),
        ("post", "/api/v1/contacts/1/", {"GET", "PUT", "PATCH", "DELETE"}),
        ("put", "/api/v1/contacts/export/", {"GET"}),
        ("post", "/api/v1/key/", {"GET"}),
    ],
)
def test_a_method_the_route_does_not_have_is_405_whatever_the_key(
    api, make_key, credentials, method, path, allow
):
    Contact.objects.create(pk=1, first_name="A", last_name="B")
    keys = {
        "view-only": make_key({"contacts": ["view"]})[1],
        "full": make_key({"contacts": ["view", "create", "edit", "delete", "export"]})[1],
        "unknown": "icrm_" + "A" * 12 + "_" + "B" * 38,
    }
    headers = bearer(keys[credentials]) if credentials in keys else {}
    response = getattr(api, method)(path, **headers)
    assert_json(response, 405)
    assert method.upper() in response.json()["detail"]
    assert allow <= {m.strip() for m in response["Allow"].split(",")}
    assert method.upper() not in response["Allow"]
    assert Contact.objects.filter(pk=1).exists()


def test_options_lists_only_what_the_key_may_do(api, make_key):
    _, view_only = make_key({"contacts": ["view"]})
    _, creator = make_key({"contacts": ["view", "create"]})
    described = api.options(LIST, **bearer(view_only))
    assert described.status_code == 200
    assert "POST" not in described.json().get("actions", {})
    described = api.options(LIST, **bearer(creator))
    assert "POST" in described.json()["actions"]


# --- 2. no trailing slash: the same route, never a redirect of a write ---------------------


def test_routes_answer_without_the_trailing_slash(api, make_key, debug):
    _, full = make_key({"contacts": ["view", "create", "edit"]})
    created = api.post(
        "/api/v1/contacts", {"first_name": "Ada", "last_name": "L"}, format="json", **bearer(full)
    )
    assert created.status_code == 201, created.content[:300]
    pk = created.json()["id"]
    assert Contact.objects.filter(pk=pk, first_name="Ada").exists()
    patched = api.patch(
        f"/api/v1/contacts/{pk}", {"first_name": "Grace"}, format="json", **bearer(full)
    )
    assert patched.status_code == 200
    assert Contact.objects.get(pk=pk).first_name == "Grace"
    assert api.get("/api/v1/contacts", **bearer(full)).json()["count"] == 1
    assert api.get("/api/v1/key", **bearer(full)).status_code == 200


@pytest.mark.parametrize("path", ["/api/schema", "/api/docs"])
def test_the_documentation_answers_without_the_trailing_slash(client, path, debug):
    assert client.get(path).status_code == 200


def test_no_api_route_redirects(client, make_key, debug):
    """A redirect drops a write's body: nothing under /api/ answers with one."""
    _, full = make_key({"contacts": ["view", "create"]})
    for path in ["/api/v1/contacts", "/api/v1/contacts/1", "/api/v1/key", "/api/v1", "/api"]:
        for method in ("get", "post", "put", "delete"):
            response = getattr(client, method)(path, **bearer(full))
            assert not 300 <= response.status_code < 400, (method, path)


# --- 3. every response under /api/ is JSON (only the Swagger UI page is HTML) -------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/",
        "/api/v1/",
        "/api/v1/invoices/",
        "/api/v1/contacts/abc/",
        "/api/v1/contacts/1/extra/",
        "/api/nothing",
    ],
)
def test_unknown_api_urls_are_json_404(api, make_key, debug, path):
    _, full = make_key()
    response = api.get(path, **bearer(full))
    assert_json(response, 404)
    assert "/api/docs/" in response.json()["detail"]


def test_405_and_415_are_json(api, make_key, debug):
    _, full = make_key({"contacts": ["create"]})
    assert_json(api.delete(LIST, **bearer(full)), 405)
    response = api.post(LIST, "a=b", content_type="text/plain", **bearer(full))
    assert_json(response, 415)


def test_an_unhandled_error_is_a_json_500_without_internals(client_500, make_key, debug):
    from crm.api import ContactViewSet

    _, full = make_key()

    def broken(self, request, *args, **kwargs):
        raise RuntimeError("internal detail that must not leak")

    original = ContactViewSet.list
    ContactViewSet.list = broken
    try:
        response = client_500.get(LIST, **bearer(full))
    finally:
        ContactViewSet.list = original
    assert_json(response, 500)
    assert "internal detail" not in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_a_bad_host_header_is_json_400(api, make_key, debug):
    _, full = make_key()
    response = api.get(LIST, HTTP_HOST="evil.example", **bearer(full))
    assert_json(response, 400)
    detail = response.json()["detail"]
    assert "evil.example" not in detail  # the header is not echoed
    if not debug:  # production: says what is wrong (debug's page becomes "Bad Request.")
        assert "Host header" in detail and "too large" not in detail


def test_only_the_swagger_page_is_html(client, debug):
    assert client.get("/api/docs/")["Content-Type"].startswith("text/html")
    assert client.get("/api/schema/")["Content-Type"].startswith("application/")
