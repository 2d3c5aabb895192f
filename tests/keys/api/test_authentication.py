"""Authentication through the real API: every way a credential can be wrong."""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit.actors import Actor
from keys import crypto, services
from keys.api import protections
from tests.helpers import bearer

URL = "/api/v1/contacts/"
pytestmark = pytest.mark.django_db


def limit_failures(n):
    from django.conf import settings

    return override_settings(API_KEYS={**settings.API_KEYS, "AUTH_FAILURES_PER_MINUTE": n})


def assert_401(response, fragment):
    assert response.status_code == 401, response.content
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert fragment.lower() in response.json()["detail"].lower()


def test_valid_key_in_bearer_header(api, make_key):
    _, full = make_key()
    assert api.get(URL, **bearer(full)).status_code == 200


def test_valid_key_in_x_api_key_header(api, make_key):
    _, full = make_key()
    assert api.get(URL, HTTP_X_API_KEY=full).status_code == 200


def test_scheme_is_case_insensitive(api, make_key):
    _, full = make_key()
    assert api.get(URL, HTTP_AUTHORIZATION=f"bearer {full}").status_code == 200


@pytest.mark.parametrize("template", ["Bearer  {k}", "Bearer {k} ", " Bearer {k}", "Bearer\t{k}"])
def test_whitespace_variants_are_tolerated_or_refused_cleanly(api, make_key, template):
    _, full = make_key()
    response = api.get(URL, HTTP_AUTHORIZATION=template.format(k=full))
    assert response.status_code in (200, 401)
    assert full not in response.content.decode()


def test_no_key(api):
    assert_401(api.get(URL), "no api key provided")


@pytest.mark.parametrize(
    ("headers", "fragment"),
    [
        ({"HTTP_AUTHORIZATION": "Bearer "}, "empty"),
        ({"HTTP_AUTHORIZATION": "Bearer"}, "empty"),
        ({"HTTP_X_API_KEY": "  "}, "empty"),
        ({"HTTP_AUTHORIZATION": "Bearer not-a-key"}, "malformed"),
        ({"HTTP_AUTHORIZATION": "Bearer " + "A" * 10_000}, "malformed"),
        ({"HTTP_X_API_KEY": "k" * 10_000}, "malformed"),
        ({"HTTP_AUTHORIZATION": "Bearer icrm_ÄÖÜ"}, "malformed"),
        ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"}, "unsupported authorization scheme"),
        ({"HTTP_AUTHORIZATION": "Token abc"}, "unsupported authorization scheme"),
    ],
)
def test_unusable_credentials_get_401_without_a_query(
    api, headers, fragment, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = api.get(URL, **headers)
    assert_401(response, fragment)


def test_bad_checksum_is_refused_without_touching_the_database(
    api, make_key, django_assert_num_queries
):
    _, full = make_key()
    broken = full[:-1] + ("a" if full[-1] != "a" else "b")
    with django_assert_num_queries(0):
        response = api.get(URL, **bearer(broken))
    assert_401(response, "checksum")
    assert broken not in response.content.decode()


def test_unknown_key_and_wrong_secret_look_identical(api, make_key):
    _key, full = make_key()
    unknown = crypto.make_key().full
    body = full[: -6 - 32] + "Z" * 32
    wrong_secret = body + crypto.checksum(body)
    r1 = api.get(URL, **bearer(unknown))
    r2 = api.get(URL, **bearer(wrong_secret))
    assert_401(r1, "no such key")
    assert r1.status_code == r2.status_code and r1.json() == r2.json()


def test_two_different_keys_are_refused(api, make_key):
    _, one = make_key()
    _, two = make_key()
    response = api.get(URL, HTTP_AUTHORIZATION=f"Bearer {one}", HTTP_X_API_KEY=two)
    assert_401(response, "two different api keys")
    assert one not in response.content.decode() and two not in response.content.decode()


def test_same_key_in_both_headers_is_fine(api, make_key):
    _, full = make_key()
    assert api.get(URL, HTTP_AUTHORIZATION=f"Bearer {full}", HTTP_X_API_KEY=full).status_code == 200


def test_duplicate_header_is_refused(api, make_key):
    _, full = make_key()
    # A WSGI server joins repeated headers with a comma.
    assert_401(api.get(URL, HTTP_X_API_KEY=f"{full}, {full}"), "malformed")


@pytest.mark.parametrize("param", ["api_key", "key", "token", "access_token"])
def test_key_in_query_string_is_refused_even_with_a_header(api, make_key, param):
    _, full = make_key()
    assert_401(api.get(f"{URL}?{param}={full}"), "not accepted in the url")
    assert_401(api.get(f"{URL}?{param}={full}", **bearer(full)), "not accepted in the url")


def test_key_in_form_body_is_refused(api, make_key):
    _, full = make_key({"contacts": ["create"]})
    response = api.post(URL, {"api_key": full, "first_name": "A"}, format="multipart")
    assert_401(response, "not accepted")


@pytest.mark.parametrize(
    "search", ["icrm_", "icrm_123", "icrm_docs_and_more", "icrm_" + "a" * 12 + "_short"]
)
def test_text_with_the_key_prefix_is_not_a_key_in_the_url(api, make_key, search):
    """Only what has the shape of a key (icrm_<12>_<38>) is refused in the URL; a search for
    'icrm_' is an ordinary request and no failed authentication."""
    from crm.models import Contact

    Contact.objects.create(first_name="A", last_name="B", company=search)
    _, full = make_key()
    try:
        with limit_failures(1):
            for _ in range(3):
                response = api.get(URL, {"search": search}, **bearer(full))
                assert response.status_code == 200, response.content
    finally:
        protections.reset_local_state()
    assert response.json()["count"] == 1


@pytest.mark.parametrize("encode", [str, lambda k: k.replace("_", "%5F")])
def test_a_key_shaped_value_anywhere_in_the_url_is_refused(api, make_key, encode):
    _, full = make_key()
    other = crypto.make_key().full
    assert_401(api.get(f"{URL}?search={encode(other)}", **bearer(full)), "not accepted in the url")
    mistyped = full[:-1] + ("a" if full[-1] != "a" else "b")
    assert_401(api.get(f"{URL}?q=x{encode(mistyped)}y", **bearer(full)), "not accepted in the url")


def test_revoked_key_is_refused_on_the_next_request(api, make_key, actor):
    key, full = make_key()
    assert api.get(URL, **bearer(full)).status_code == 200
    services.key_revoke(key=key, actor=actor)
    assert_401(api.get(URL, **bearer(full)), "revoked")


def test_expired_key_is_refused_at_once_without_any_job(api, make_key):
    _, full = make_key(expiry_policy="30d")
    with time_machine.travel(timezone.now() + timedelta(days=29, hours=23), tick=False):
        assert api.get(URL, **bearer(full)).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(days=30, seconds=1), tick=False):
        assert_401(api.get(URL, **bearer(full)), "expired")


@pytest.mark.parametrize(("end", "fragment"), [("expires_at", "expired"), ("grace", "grace")])
def test_a_key_works_until_the_microsecond_it_ends_and_not_at_it(
    api, make_key, actor, end, fragment
):
    key, full = make_key(expiry_policy="30d")
    if end == "grace":
        services.key_rotate(key=key, grace=timedelta(hours=1), actor=actor)
        end = "grace_ends_at"
    key.refresh_from_db()
    ends = getattr(key, end)
    with time_machine.travel(ends - timedelta(microseconds=1), tick=False):
        assert api.get(URL, **bearer(full)).status_code == 200
        assert api.get(URL, **bearer(full)).status_code == 200  # again, from the key cache
    with time_machine.travel(ends, tick=False):
        assert_401(api.get(URL, **bearer(full)), fragment)
    with time_machine.travel(ends + timedelta(days=400), tick=False):
        assert_401(api.get(URL, **bearer(full)), fragment)


def test_an_expired_key_is_told_its_expiry_as_the_admin_wrote_it(api, make_key):
    """A custom date reads as the admin chose it ("2027-01-15, end of day UTC"), a policy's
    expiry as the moment it was; both as the admin and the CLI show them."""
    day = timezone.localdate() + timedelta(days=3)
    custom, custom_full = make_key(expiry_policy="custom", expiry_date=day)
    policy, policy_full = make_key(expiry_policy="30d")
    assert api.get(URL, **bearer(custom_full)).status_code == 200  # cached before it expires
    with time_machine.travel(timezone.now() + timedelta(days=40), tick=False):
        response = api.get(URL, **bearer(custom_full))
        assert_401(response, "expired")
        assert response.json()["detail"] == (
            f"This API key expired on {day.isoformat()}, end of day UTC."
        )
        assert custom.expiry_text() == f"{day.isoformat()}, end of day UTC"
        response = api.get(URL, **bearer(policy_full))
        assert response.json()["detail"] == f"This API key expired on {policy.expiry_text()}."


def test_scope_edit_applies_to_the_very_next_request(api, make_key, actor):
    key, full = make_key({"contacts": ["view"]})
    assert api.get(URL, **bearer(full)).status_code == 200
    assert api.get("/api/v1/leads/", **bearer(full)).status_code == 403
    services.key_update_scopes(key=key, scopes={"leads": ["view"]}, actor=actor)
    assert api.get(URL, **bearer(full)).status_code == 403
    assert api.get("/api/v1/leads/", **bearer(full)).status_code == 200


def test_authentication_costs_one_query(make_key):
    """The key lookup is one query; nothing is written."""
    from django.test import RequestFactory

    from keys.api.authentication import authenticate_request

    key, full = make_key()
    request = RequestFactory().get(URL, HTTP_AUTHORIZATION=f"Bearer {full}")
    with CaptureQueriesContext(connection) as queries:
        assert authenticate_request(request).pk == key.pk
    assert len(queries) == 1
    assert queries[0]["sql"].lstrip().upper().startswith("SELECT")


def test_authenticated_list_request_adds_one_query_to_the_view(
    api, make_key, django_assert_max_num_queries
):
    _, full = make_key()
    # The contacts list view itself runs 2 queries (count + page); the key adds at most 1.
    with django_assert_max_num_queries(3):
        assert api.get(URL, **bearer(full)).status_code == 200


def test_key_info_endpoint(api, make_key):
    key, full = make_key({"leads": ["view", "create"]}, name="Zapier Connector")
    response = api.get("/api/v1/key/", **bearer(full))
    assert response.status_code == 200
    data = response.json()
    assert data["name"] == "Zapier Connector"
    assert data["public_id"] == key.public_id
    assert data["scopes"] == {"leads": ["view", "create"]}
    assert data["status"] == "active"
    assert data["in_grace_period"] is False
    assert data["expires_at"] is not None
    assert full not in response.content.decode()


def test_key_info_needs_a_valid_key(api):
    assert api.get("/api/v1/key/").status_code == 401


def test_responses_are_not_cached_and_not_sniffed(api, make_key):
    _, full = make_key()
    response = api.get(URL, **bearer(full))
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_admin_session_neither_authenticates_nor_touches_an_api_request(
    api, make_key, admin_client
):
    """The API knows keys only: a logged-in admin's session and CSRF cookies give no access,
    and an API response never sets or varies on a cookie."""
    admin_client.get("/admin/")  # a session and a CSRF cookie
    api.cookies = admin_client.cookies
    response = api.get(URL)
    assert response.status_code == 401
    _, full = make_key()
    for response in (api.get(URL), api.get(URL, **bearer(full)), api.get("/api/v1/nothing/")):
        assert not response.cookies
        assert "Cookie" not in response.get("Vary", "")
    # The admin itself still has its session, user and messages.
    assert admin_client.get("/admin/").status_code == 200


def test_method_override_headers_do_not_change_the_action(api, make_key):
    _, full = make_key({"contacts": ["view"]})
    from crm.models import Contact

    contact = Contact.objects.create(first_name="A", last_name="B")
    response = api.get(f"{URL}{contact.pk}/", HTTP_X_HTTP_METHOD_OVERRIDE="DELETE", **bearer(full))
    assert response.status_code == 200
    assert Contact.objects.filter(pk=contact.pk).exists()
    response = api.post(f"{URL}{contact.pk}/", HTTP_X_HTTP_METHOD_OVERRIDE="GET", **bearer(full))
    assert response.status_code in (403, 405)


def test_unknown_api_url_is_json_404(api, make_key):
    _, full = make_key()
    response = api.get("/api/v1/nothing-here/", **bearer(full))
    assert response.status_code == 404
    assert response.json()["detail"]


def test_actor_from_cli_is_named(make_key):
    assert Actor.cli().label.startswith("cli:")


def _json_escaped(text: str, chars: str) -> str:
    return "".join(f"\\u{ord(c):04x}" if c in chars else c for c in text)


@pytest.mark.parametrize(
    "written",
    [
        "plain",
        "underscore escaped",  # JSON's "\u005f": the same string once parsed
        "every character escaped",
        "percent-encoded",
        "inside other text",
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_a_key_in_a_json_body_is_refused_before_it_is_stored(api, make_key, written, method):
    from crm.models import Contact

    _, full = make_key({"contacts": ["view", "create", "edit", "export"]})
    leaked = crypto.make_key().full  # anyone's key: a key-shaped value is never data
    value = {
        "plain": leaked,
        "underscore escaped": _json_escaped(leaked, "_"),
        "every character escaped": _json_escaped(leaked, leaked),
        "percent-encoded": leaked.replace("_", "%5F"),
        "inside other text": f"my key is {leaked}, keep it",
    }[written]
    contact = Contact.objects.create(first_name="A", last_name="B")
    url = "/api/v1/contacts/" if method == "POST" else f"/api/v1/contacts/{contact.pk}/"
    body = '{"first_name": "' + value + '", "last_name": "B"}'
    response = api.generic(method, url, body, content_type="application/json", **bearer(full))
    assert_401(response, "not accepted in the url or the request body")
    assert leaked not in response.content.decode()
    assert crypto.parse_key(leaked) not in response.content.decode()
    assert list(Contact.objects.values_list("first_name", flat=True)) == ["A"]
    exported = api.get("/api/v1/contacts/export/", **bearer(full))
    listed = b"".join(exported.streaming_content).decode()
    assert crypto.parse_key(leaked) not in listed


def test_text_with_the_key_prefix_in_a_json_body_is_data(api, make_key):
    _, full = make_key({"contacts": ["create"]})
    body = {"first_name": "icrm_", "last_name": "icrm_" + "a" * 12 + "_short"}
    response = api.post("/api/v1/contacts/", body, format="json", **bearer(full))
    assert response.status_code == 201, response.content
