"""Per-key rate limits as an integration meets them: the RateLimit headers on every response,
and one limit for the whole machine even without Redis."""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest

from keys import services
from keys.api import protections
from tests.helpers import ROOT, bearer, gunicorn

URL = "/api/v1/contacts/"


def limited_key(make_key, actor, limit):
    key, full = make_key()
    services.key_update(key=key, data={"rate_limit_per_minute": limit}, actor=actor)
    return key, full


@pytest.mark.django_db
def test_ratelimit_headers_count_down_then_429(api, make_key, actor):
    _, full = limited_key(make_key, actor, 3)
    seen = []
    for _ in range(4):
        response = api.get(URL, **bearer(full))
        seen.append(
            (
                response.status_code,
                response["RateLimit-Limit"],
                response["RateLimit-Remaining"],
            )
        )
        assert 1 <= int(response["RateLimit-Reset"]) <= 61
    assert seen == [(200, "3", "2"), (200, "3", "1"), (200, "3", "0"), (429, "3", "0")]
    assert int(response["Retry-After"]) == int(response["RateLimit-Reset"])


@pytest.mark.django_db
def test_ratelimit_headers_on_errors_too(api, make_key, actor):
    _, full = limited_key(make_key, actor, 10)
    response = api.get("/api/v1/leads/", **bearer(full))  # no leads scope
    assert response.status_code == 403
    assert response["RateLimit-Limit"] == "10" and response["RateLimit-Remaining"] == "9"


@pytest.mark.django_db
def test_no_ratelimit_headers_without_a_limit(api, make_key):
    _, full = make_key()
    response = api.get(URL, **bearer(full))
    assert response.status_code == 200
    assert not any(name.lower().startswith("ratelimit") for name in response.headers)


# --- one limit for the machine, without Redis ------------------------------------------------


# Counters are per minute: a run that crosses a minute boundary is checked window by window
# (at most the limit in each), so the tests hold whenever they run.
HIT_SCRIPT = """
import json, time
import django
django.setup()
from keys.api import protections
print(json.dumps([[int(time.time() // 60), protections.hit("shared-test", 10, 60)[0]]
                  for _ in range(15)]))
"""


def assert_limit_per_minute(hits, limit):
    """hits: (minute, allowed) pairs. Each minute lets exactly min(limit, its requests) in."""
    minutes = {minute for minute, _ in hits}
    for minute in minutes:
        allowed = [ok for m, ok in hits if m == minute]
        assert sum(allowed) == min(limit, len(allowed)), (minute, allowed)


def test_without_redis_two_processes_share_one_limit(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_keys.test_settings",
        "API_KEY_COUNTERS_FILE": str(tmp_path / "counters.sqlite3"),
    }
    env.pop("REDIS_URL", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", HIT_SCRIPT], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    hits = [hit for p in processes for hit in json.loads(p.communicate(timeout=60)[0])]
    assert len(hits) == 30
    assert_limit_per_minute(hits, 10)


def _call(base, key):
    """(minute of the server's Date header, allowed) of one request."""
    request = urllib.request.Request(base + URL, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as exc:
        status, headers = exc.code, exc.headers
    assert status in (200, 429), status
    minute = int(parsedate_to_datetime(headers["Date"]).timestamp() // 60)
    return minute, status == 200


@pytest.mark.django_db(transaction=True)
def test_limit_ten_lets_ten_through_two_gunicorn_processes_without_redis(make_key, actor, tmp_path):
    """The finding: limit 10 let 20 through with 2 gunicorn workers and no Redis. Two servers
    on one machine (one var folder) make the two processes certain to share the traffic."""
    _, full = limited_key(make_key, actor, 10)
    with gunicorn(tmp_path) as first, gunicorn(tmp_path) as second:  # no REDIS_URL
        hits = [_call(base, full) for _ in range(10) for base in (first, second)]
    assert_limit_per_minute(hits, 10)


def test_counters_survive_a_broken_counters_file(settings, tmp_path):
    """An unusable counters file (a folder in its place) falls back to this process's
    counters with a warning instead of failing requests."""
    settings.REDIS_URL = ""
    (tmp_path / "not-a-file").mkdir()
    settings.API_KEYS = {**settings.API_KEYS, "COUNTERS_FILE": str(tmp_path / "not-a-file")}
    protections.reset_local_state()
    results = [protections.hit("broken-file", 2, 60)[0] for _ in range(3)]
    assert results == [True, True, False]


@pytest.mark.django_db
@pytest.mark.parametrize("redis", [False, True], ids=["machine", "redis"])
def test_a_rotation_shares_one_rate_limit_between_old_and_new_key(
    api, make_key, actor, settings, redis
):
    """During the grace period an integration holds two working keys; alternating them must not
    double its allowance. Rotating twice (old, middle and new all working) shares it too."""
    if redis and not os.environ.get("REDIS_URL"):
        pytest.skip("REDIS_URL is not set")
    settings.REDIS_URL = os.environ.get("REDIS_URL", "") if redis else ""
    key, old = limited_key(make_key, actor, 4)
    middle = services.key_rotate(key=key, grace=timedelta(hours=1), actor=actor)
    newest = services.key_rotate(key=middle.key, grace=timedelta(hours=1), actor=actor)
    keys = [old, middle.full_key, newest.full_key]
    statuses = [api.get(URL, **bearer(keys[i % 3])).status_code for i in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]
    remaining = [api.get(URL, **bearer(k))["RateLimit-Remaining"] for k in keys]
    assert remaining == ["0", "0", "0"]
    other = limited_key(make_key, actor, 4)[1]  # an unrelated key keeps its own bucket
    assert api.get(URL, **bearer(other)).status_code == 200


@pytest.mark.django_db
def test_the_shared_limit_costs_no_query(api, make_key, actor, django_assert_max_num_queries):
    key, old = limited_key(make_key, actor, 100)
    new = services.key_rotate(key=key, grace=timedelta(hours=1), actor=actor).full_key
    for full in (old, new):
        api.get(URL, **bearer(full))  # the key cache has both
        with django_assert_max_num_queries(2):  # the list's count and page; no key query
            assert api.get(URL, **bearer(full)).status_code == 200
