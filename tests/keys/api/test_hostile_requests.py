"""Hostile requests under /api/, in production and in debug: a key in the path, URLs outside
any route, too many parameters, bodies too deep, too large or not UTF-8. Each is JSON with a
4xx saying what is wrong: never a 500, never an HTML page, never the key echoed."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from crm.models import Contact
from keys import crypto
from tests.helpers import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


@pytest.fixture
def api():
    return APIClient(raise_request_exception=False)


@pytest.fixture
def full(make_key):
    return make_key({"contacts": ["view", "create", "edit", "export"]})[1]


def json_error(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return response.json()


# --- 5. a key in the path ----------------------------------------------------------------------


def _encodings(key: str) -> list[str]:
    return [
        key,
        key.replace("_", "%5F"),
        key.replace("_", "%5f"),
        "".join(f"%{b:02X}" for b in key.encode()),
    ]


@pytest.mark.parametrize("form", range(4))
@pytest.mark.parametrize(
    "template", ["/api/v1/contacts/{}/", "/api/v1/{}", "/api/{}/contacts/", "/api/v1/contacts/1/{}"]
)
def test_a_key_in_the_path_is_refused_like_one_in_the_query(api, full, debug, template, form):
    leaked = crypto.make_key().full
    path = template.format(_encodings(leaked)[form])
    for headers in ({}, bearer(full)):
        response = api.get(path, **headers)
        body = json_error(response, 401)
        assert "not accepted in the URL" in body["detail"]
        assert "Authorization" in body["detail"]
        assert response["WWW-Authenticate"]
        assert leaked not in response.content.decode()
        assert crypto.parse_key(leaked) not in response.content.decode()


@pytest.mark.parametrize(
    "segment",
    ["icrm_", "icrm_abc", "icrm_" + "a" * 12 + "_short", "icrm_" + "a" * 11 + "_" + "b" * 38],
)
def test_text_with_the_prefix_in_the_path_is_an_ordinary_404(api, full, segment):
    body = json_error(api.get(f"/api/v1/contacts/{segment}/", **bearer(full)), 404)
    assert "/api/docs/" in body["detail"]


# --- 7. URLs outside any route ------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/api/", "/api/v1/", "/api/v2/contacts/"])
def test_a_path_outside_any_route_is_a_json_404_naming_the_docs(api, full, debug, path):
    for headers in ({}, bearer(full)):
        body = json_error(api.get(path, **headers), 404)
        assert "/api/docs/" in body["detail"]


def test_a_path_that_only_starts_like_the_api_is_not_the_api(client):
    response = client.get("/apix")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


# --- 6. too many parameters --------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/contacts/", "/api/v1/contacts/export/", "/api/nope"])
def test_more_query_parameters_than_django_reads_is_a_json_400(api, full, debug, path):
    query = "&".join(f"p{i}=1" for i in range(1001))
    body = json_error(api.get(f"{path}?{query}", **bearer(full)), 400)
    assert "1000" in body["detail"] and "parameters" in body["detail"]


def test_more_form_fields_than_django_reads_is_a_json_4xx(api, full, debug):
    form = "&".join(f"p{i}=1" for i in range(1001))
    response = api.post(
        "/api/v1/contacts/",
        form,
        content_type="application/x-www-form-urlencoded",
        **bearer(full),
    )
    assert response.status_code in (400, 415)
    assert response["Content-Type"].startswith("application/json")
    assert not Contact.objects.exists()


# --- 3. bodies ----------------------------------------------------------------------------------

DEEP = ["[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, "[" * 100_000]


@pytest.mark.parametrize("body", DEEP, ids=["array", "object", "unclosed"])
@pytest.mark.parametrize("method", ["post", "put", "patch"])
def test_a_deeply_nested_body_is_a_400(api, full, debug, method, body):
    contact = Contact.objects.create(first_name="A", last_name="B")
    path = "/api/v1/contacts/" if method == "post" else f"/api/v1/contacts/{contact.pk}/"
    response = getattr(api, method)(path, body, content_type="application/json", **bearer(full))
    assert "nested too deeply" in json_error(response, 400)["detail"]
    assert Contact.objects.get().first_name == "A"


def test_a_body_nested_within_reason_is_still_read(api, full):
    body = {"first_name": "A", "last_name": "B", "extra": [[[[{"x": [1]}]]]]}
    response = api.post("/api/v1/contacts/", body, format="json", **bearer(full))
    assert response.status_code == 201


def test_an_oversized_body_is_a_json_413(api, full, debug, settings):
    body = json.dumps({"first_name": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)})
    response = api.post("/api/v1/contacts/", body, content_type="application/json", **bearer(full))
    detail = json_error(response, 413)["detail"]
    assert "2.5 MB" in detail or str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in detail
    assert not Contact.objects.exists()


@pytest.mark.parametrize("body", [b'{"first_name": "\xff\xfe", "last_name": "B"}', b"\xc3("])
def test_a_body_that_is_not_utf8_is_a_json_400(api, full, debug, body):
    response = api.post("/api/v1/contacts/", body, content_type="application/json", **bearer(full))
    assert "UTF-8" in json_error(response, 400)["detail"]
    assert not Contact.objects.exists()
