"""The request-path key cache: a valid key costs no query in the steady state, on the embedded
default too, and a change made by any process reaches every other one on its very next
request."""

import os

import pytest
from django.db import connection

from keys import crypto, services
from keys.api import lookup
from tests.helpers import bearer, gunicorn, status_of, wait_for

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"
sqlite_only = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="the embedded default is SQLite"
)


def server_env(redis_url: str = "") -> dict[str, str]:
    """For ``gunicorn``: Redis when given, and the suite's failure limit (with Redis the
    failure counter is shared with this server, and the suite sends many bad keys)."""
    env = {"API_KEY_AUTH_FAILURES_PER_MINUTE": "100000"}
    return {**env, "REDIS_URL": redis_url} if redis_url else env


def cache_ready() -> bool:
    """The cache may be used now (with Redis: once the subscription has answered)."""
    return lookup.cache.sync() is not None


@pytest.fixture
def with_redis(settings):
    settings.REDIS_URL = REDIS_URL
    lookup.cache.reset()
    assert wait_for(cache_ready)
    yield
    lookup.cache.reset()


@pytest.fixture
def without_redis(settings):
    settings.REDIS_URL = ""
    lookup.cache.reset()
    yield
    lookup.cache.reset()


@pytest.mark.django_db
def test_second_lookup_is_served_from_the_cache(with_redis, make_key, django_assert_num_queries):
    key, _ = make_key()
    with django_assert_num_queries(1):
        assert lookup.lookup(key.public_id).pk == key.pk
    with django_assert_num_queries(0):
        again = lookup.lookup(key.public_id)
    assert again.pk == key.pk and again.scopes == key.scopes


@pytest.mark.django_db
def test_a_change_evicts_at_once_in_this_process(
    with_redis, make_key, actor, django_assert_num_queries
):
    key, _ = make_key({"contacts": ["view"]})
    lookup.lookup(key.public_id)
    services.key_update_scopes(key=key, scopes={"leads": ["view"]}, actor=actor)
    with django_assert_num_queries(1):
        assert lookup.lookup(key.public_id).scopes == {"leads": ["view"]}
    services.key_revoke(key=key, actor=actor)
    assert lookup.lookup(key.public_id).revoked_at is not None


@pytest.mark.django_db
def test_a_change_made_behind_the_services_back_is_seen_once_the_entry_is_too_old(
    with_redis, make_key, settings
):
    """The backstop: an edit by hand in SQL announces nothing; the entry serves it for at most
    LOOKUP_CACHE_SECONDS."""
    from keys.models import APIKey

    settings.API_KEYS = {**settings.API_KEYS, "LOOKUP_CACHE_SECONDS": 30}
    assert wait_for(cache_ready)
    key, _ = make_key()
    lookup.lookup(key.public_id)
    APIKey.objects.filter(pk=key.pk).update(name="Renamed by hand")

    def age_entry(seconds: float) -> None:  # as if it had been stored that long ago
        stored_at, value = lookup.cache._entries[key.public_id]
        lookup.cache._entries[key.public_id] = (stored_at - seconds, value)

    age_entry(29)
    assert lookup.lookup(key.public_id).name == "Test key"
    age_entry(2)
    assert lookup.lookup(key.public_id).name == "Renamed by hand"


@sqlite_only
@pytest.mark.django_db
def test_the_embedded_default_caches_keys_without_redis(
    without_redis, make_key, api, django_assert_num_queries
):
    """SQLite without Redis: a valid key costs no query once this process has seen it. The
    detail view itself reads its contact (1 query)."""
    from crm.models import Contact

    contact = Contact.objects.create(first_name="Ada", last_name="Lovelace")
    _, full = make_key()
    url = f"/api/v1/contacts/{contact.pk}/"
    with django_assert_num_queries(2):  # the key, the contact
        assert api.get(url, **bearer(full)).status_code == 200
    for _ in range(3):
        with django_assert_num_queries(1):  # the contact only
            assert api.get(url, **bearer(full)).status_code == 200


@pytest.mark.skipif(connection.vendor == "sqlite", reason="SQLite is one machine by definition")
@pytest.mark.django_db
def test_a_shared_database_without_redis_reads_the_key_every_time(
    without_redis, make_key, django_assert_num_queries
):
    """PostgreSQL without Redis may serve several machines, and nothing would tell the others
    about a change: no cache."""
    key, _ = make_key()
    for _ in range(2):
        with django_assert_num_queries(1):
            assert lookup.lookup(key.public_id).pk == key.pk


@pytest.mark.django_db
@pytest.mark.parametrize("redis_on", [False, True], ids=["no-redis", "redis"])
def test_an_unknown_public_id_is_remembered_until_a_key_takes_it(
    redis_on, settings, make_key, api, monkeypatch, django_assert_num_queries
):
    """Unknown ids are cached too (so a probe for a real id takes the time of a probe for an
    unknown one), and a key created with that id is served at once."""
    settings.REDIS_URL = REDIS_URL if redis_on else ""
    lookup.cache.reset()
    if connection.vendor != "sqlite" and not redis_on:
        pytest.skip("no cache on a shared database without Redis (see the test above)")
    assert wait_for(cache_ready)
    unknown = crypto.make_key()
    with django_assert_num_queries(1):
        assert api.get("/api/v1/key/", **bearer(unknown.full)).status_code == 401
    with django_assert_num_queries(0):
        assert api.get("/api/v1/key/", **bearer(unknown.full)).status_code == 401
    monkeypatch.setattr(crypto, "new_public_id", lambda: unknown.public_id)
    key, full = make_key()
    assert key.public_id == unknown.public_id
    assert api.get("/api/v1/key/", **bearer(full)).status_code == 200
    lookup.cache.reset()


# --- other processes ------------------------------------------------------------------------


@pytest.fixture(params=["same-machine", "other-machine"])
def other_process(request, transactional_db, tmp_path, settings):
    """The app under gunicorn in another process, on the test database. "same-machine": no
    Redis anywhere, the two processes share the var dir (the embedded default). "other-machine":
    separate var dirs, so only Redis can carry a change (which this process publishes, as the
    admin or the CLI would)."""
    if request.param == "same-machine":
        settings.REDIS_URL = ""
        var_dir = tmp_path / "var"
        settings.API_KEYS = {**settings.API_KEYS, "CHANGES_FILE": str(var_dir / "key-changes")}
        redis_url = ""
    else:
        settings.REDIS_URL = redis_url = REDIS_URL
        var_dir = tmp_path / "other-machine"
    lookup.cache.reset()
    with gunicorn(var_dir, **server_env(redis_url)) as base:
        yield base
    lookup.cache.reset()


@pytest.mark.django_db(transaction=True)
def test_changes_reach_another_process_on_its_very_next_request(other_process, make_key, actor):
    key, full = make_key({"contacts": ["view"]})
    for _ in range(3):  # warm the other process's cache
        assert status_of(other_process, "/api/v1/contacts/", full) == 200
    assert status_of(other_process, "/api/v1/leads/", full) == 403

    services.key_update_scopes(key=key, scopes={"leads": ["view"]}, actor=actor)
    assert status_of(other_process, "/api/v1/leads/", full) == 200
    assert status_of(other_process, "/api/v1/contacts/", full) == 403

    services.key_revoke(key=key, actor=actor)
    assert status_of(other_process, "/api/v1/leads/", full) == 401


@pytest.mark.django_db(transaction=True)
def test_a_key_created_elsewhere_is_accepted_at_once(other_process, actor, monkeypatch):
    """The other process remembered the id as unknown; the creation reaches it too."""
    unknown = crypto.make_key()
    for _ in range(2):
        assert status_of(other_process, "/api/v1/key/", unknown.full) == 401
    monkeypatch.setattr(crypto, "new_public_id", lambda: unknown.public_id)
    generated = services.key_generate(name="Late", scopes={"contacts": ["view"]}, actor=actor)
    assert status_of(other_process, "/api/v1/key/", generated.full_key) == 200


@sqlite_only
@pytest.mark.django_db(transaction=True)
def test_a_change_file_deleted_under_a_running_app_is_picked_up(
    make_key, actor, tmp_path, settings
):
    """Someone deletes var/key-changes while the app runs: the next change makes a new file,
    which every process maps within about a second (emptying its cache)."""
    settings.REDIS_URL = ""
    changes_file = tmp_path / "key-changes"
    settings.API_KEYS = {**settings.API_KEYS, "CHANGES_FILE": str(changes_file)}
    key, full = make_key({"contacts": ["view"]})
    with gunicorn(tmp_path, **server_env()) as base:
        for _ in range(3):
            assert status_of(base, "/api/v1/key/", full) == 200
        changes_file.unlink()
        services.key_revoke(key=key, actor=actor)
        assert wait_for(lambda: status_of(base, "/api/v1/key/", full) == 401)
    lookup.cache.reset()


@pytest.mark.django_db(transaction=True)
def test_gunicorn_access_log_never_holds_a_key(make_key, tmp_path, settings):
    """Part of the canary: gunicorn's access log (path, query string, status, user agent) never
    holds a key sent the right way, in a header."""
    _, full = make_key({"contacts": ["view"]})
    with gunicorn(tmp_path, **server_env()) as base:
        assert status_of(base, "/api/v1/contacts/", full) == 200
        assert status_of(base, "/api/v1/contacts/?page=1", full) == 200
    log = (tmp_path / "access.log").read_text()
    assert "/api/v1/contacts/" in log  # the log really was written
    assert full.split("_", 2)[2] not in log


@pytest.mark.django_db
def test_redis_down_means_no_cache_and_no_error(settings, make_key, api, django_assert_num_queries):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    lookup.cache.reset()
    key, full = make_key()
    for _ in range(2):
        with django_assert_num_queries(1):
            assert lookup.lookup(key.public_id).pk == key.pk
    assert api.get("/api/v1/key/", **bearer(full)).status_code == 200
    lookup.cache.reset()
