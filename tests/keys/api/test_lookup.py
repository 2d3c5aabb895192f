"""The request-path key cache: used when Redis carries invalidations, and never stale after a
change, in this process or in another one."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from keys import services
from keys.api import lookup
from tests.helpers import ROOT, database_url

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"


@pytest.fixture
def with_redis(settings):
    settings.REDIS_URL = REDIS_URL
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
def test_cache_is_off_without_redis(settings, make_key, django_assert_num_queries):
    settings.REDIS_URL = ""
    key, _ = make_key()
    lookup.lookup(key.public_id)
    with django_assert_num_queries(1):
        lookup.lookup(key.public_id)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def other_process(transactional_db, tmp_path, settings):
    """The app served by gunicorn in a separate process, on the test database, with Redis
    (which this process publishes its changes to, as the admin or CLI would)."""
    settings.REDIS_URL = REDIS_URL
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_keys.settings",
        "CRM_KEYS_READ_DOTENV": "0",
        "CRM_KEYS_VAR_DIR": str(tmp_path),
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": "cross-process-test-secret",
        "API_KEY_PEPPER": settings.API_KEYS["PEPPER"],
        "DATABASE_URL": database_url(),
        "REDIS_URL": REDIS_URL,
        "API_KEY_USAGE_SHIP_INTERVAL": "0",
        # As in the test settings: the suite sends many bad keys from 127.0.0.1, and with
        # Redis the failure counter is shared with this server.
        "API_KEY_AUTH_FAILURES_PER_MINUTE": "100000",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "crm_keys.wsgi",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "info",
            "--no-control-socket",  # never take over another instance's (see README)
            "--access-logfile",
            str(tmp_path / "access.log"),
            "--error-logfile",
            str(tmp_path / "error.log"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/api/v1/key/", timeout=2)
        except urllib.error.HTTPError:
            break  # 401: it is up
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                log = tmp_path / "error.log"
                pytest.fail(
                    "gunicorn did not start: " + (log.read_text()[-2000:] if log.exists() else "")
                )
            time.sleep(0.1)
    yield base
    server.terminate()
    server.wait(timeout=10)


def _status(base: str, path: str, key: str) -> int:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.django_db(transaction=True)
def test_changes_reach_another_process_on_its_very_next_request(other_process, make_key, actor):
    key, full = make_key({"contacts": ["view"]})
    for _ in range(3):  # warm the other process's cache
        assert _status(other_process, "/api/v1/contacts/", full) == 200
    assert _status(other_process, "/api/v1/leads/", full) == 403

    services.key_update_scopes(key=key, scopes={"leads": ["view"]}, actor=actor)
    assert _status(other_process, "/api/v1/leads/", full) == 200
    assert _status(other_process, "/api/v1/contacts/", full) == 403

    services.key_revoke(key=key, actor=actor)
    assert _status(other_process, "/api/v1/leads/", full) == 401


@pytest.mark.django_db(transaction=True)
def test_gunicorn_access_log_never_holds_a_key(other_process, make_key, tmp_path):
    """Part of the canary: gunicorn's access log (path, query string, status, user agent) never
    holds a key sent the right way, in a header."""
    _, full = make_key({"contacts": ["view"]})
    assert _status(other_process, "/api/v1/contacts/", full) == 200
    assert _status(other_process, "/api/v1/contacts/?page=1", full) == 200
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
    assert api.get("/api/v1/key/", HTTP_AUTHORIZATION=f"Bearer {full}").status_code == 200
