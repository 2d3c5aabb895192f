"""A Redis that is alive but does not answer (SIGSTOP) — or that the changing process cannot
reach — must neither keep a revoked key working nor slow every request down.

Each test runs its own redis-server (never the shared one) and pauses it."""

import logging

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from crm_keys import redis_client
from keys import jobs, services
from keys.api import changes, lookup
from keys.models import APIKey
from tests.helpers import bearer, gunicorn, own_redis, rotated_keys_due, status_of, wait_for

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens there


def cache_ready() -> bool:
    return lookup.cache.sync() is not None


def server_env(redis_url: str) -> dict[str, str]:
    """For ``gunicorn``: this Redis, and the suite's failure limit (the failure counter in Redis
    is shared with this server)."""
    return {"REDIS_URL": redis_url, "API_KEY_AUTH_FAILURES_PER_MINUTE": "100000"}


@pytest.fixture
def redis_of_our_own(tmp_path, settings):
    with own_redis(tmp_path / "redis") as own:
        settings.REDIS_URL = own.url
        lookup.cache.reset()
        redis_client.reset()
        yield own
    lookup.cache.reset()
    redis_client.reset()


@pytest.mark.django_db
def test_a_process_stops_trusting_its_cache_when_redis_hangs(
    redis_of_our_own, make_key, django_assert_num_queries
):
    key, _ = make_key()
    assert wait_for(cache_ready)
    lookup.lookup(key.public_id)
    with django_assert_num_queries(0):
        lookup.lookup(key.public_id)

    redis_of_our_own.hang()
    # The subscription falls silent: within about a second the cache is no longer used.
    assert wait_for(lambda: not cache_ready())
    with django_assert_num_queries(1):
        lookup.lookup(key.public_id)

    redis_of_our_own.resume()
    assert wait_for(cache_ready)  # resubscribed, with an empty cache
    with django_assert_num_queries(1):
        lookup.lookup(key.public_id)
    with django_assert_num_queries(0):
        lookup.lookup(key.public_id)


@pytest.mark.django_db(transaction=True)
def test_a_revoke_with_redis_hung_is_refused_everywhere_once_it_returns(
    redis_of_our_own, make_key, actor, tmp_path
):
    """Another machine's web process has the key cached and Redis hangs: the revoke does not
    return before that process has stopped trusting its cache."""
    key, full = make_key({"contacts": ["view"]})
    with gunicorn(tmp_path / "other-machine", **server_env(redis_of_our_own.url)) as base:
        for _ in range(3):
            assert status_of(base, "/api/v1/key/", full) == 200
        redis_of_our_own.hang()
        problems: list[str] = []
        with changes.reporting_to(problems.append):
            services.key_revoke(key=key, actor=actor)
        assert status_of(base, "/api/v1/key/", full) == 401
        # Said, not hidden: a process that still hears Redis could not be told.
        assert len(problems) == 1 and "revocation is saved" in problems[0]


@pytest.mark.django_db(transaction=True)
def test_a_revoke_from_a_process_that_cannot_reach_redis_applies_on_this_machine_at_once(
    tmp_path, make_key, actor, settings
):
    """The changing process cannot reach Redis while the web workers can (the security
    review's revocation lag): the workers of this machine refuse the key on their next
    request."""
    var_dir = tmp_path / "var"
    with own_redis(tmp_path / "redis") as live:
        key, full = make_key({"contacts": ["view"]})
        with gunicorn(var_dir, **server_env(live.url)) as base:
            for _ in range(3):
                assert status_of(base, "/api/v1/key/", full) == 200
            settings.REDIS_URL = DEAD_REDIS
            settings.API_KEYS = {**settings.API_KEYS, "CHANGES_FILE": str(var_dir / "key-changes")}
            lookup.cache.reset()
            problems: list[str] = []
            with changes.reporting_to(problems.append):
                services.key_revoke(key=key, actor=actor)
            assert status_of(base, "/api/v1/key/", full) == 401
            assert len(problems) == 1 and "Redis did not confirm" in problems[0]
    lookup.cache.reset()


@pytest.mark.django_db(transaction=True)
def test_the_cli_says_when_a_change_could_not_be_announced(settings, make_key):
    """Never a plain success: the command says what is saved and what may lag, and fails."""
    settings.REDIS_URL = DEAD_REDIS
    key, _ = make_key()
    with pytest.raises(CommandError) as excinfo:
        call_command("apikey", "revoke", key.public_id, "--yes")
    assert "The revocation is saved, but Redis did not confirm" in str(excinfo.value)
    key.refresh_from_db()
    assert key.revoked_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_admin_warns_when_a_change_could_not_be_announced(settings, make_key, admin_client):
    settings.REDIS_URL = DEAD_REDIS
    key, _ = make_key()
    response = admin_client.post(
        reverse("admin:keys_apikey_revoke", args=[key.pk]), {"reason": "leaked"}, follow=True
    )
    shown = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert any(
        tag == "warning" and "The revocation is saved, but Redis did not confirm" in text
        for tag, text in shown
    ), shown


@pytest.mark.django_db
def test_a_hung_redis_costs_one_timeout_then_the_in_process_limits(
    redis_of_our_own, make_key, actor, api, caplog
):
    """The per-key rate limit keeps working while Redis hangs, the requests stop waiting on
    Redis after the first failure, and the fallback is logged once, not per request."""
    key, full = make_key()
    services.key_update(key=key, data={"rate_limit_per_minute": 3}, actor=actor)
    redis_of_our_own.hang()
    caplog.set_level(logging.WARNING)
    statuses = [api.get("/api/v1/key/", **bearer(full)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    fallbacks = [r for r in caplog.records if "in-process" in r.getMessage()]
    assert len(fallbacks) == 1, [r.getMessage() for r in caplog.records]


@pytest.mark.django_db(transaction=True)
def test_a_job_revoking_keys_with_redis_hung_neither_waits_nor_floods_the_log(
    redis_of_our_own, caplog
):
    """The grace-end revocations need no urgent notice (the keys are refused from their grace
    end, cached or not): one try through the circuit breaker, one warning for the outage."""
    due = rotated_keys_due(5)
    redis_of_our_own.hang()
    caplog.set_level(logging.WARNING)
    assert jobs.revoke_grace_ended()["revoked"] == 5
    assert all(k.revoked_at is not None for k in APIKey.objects.filter(pk__in=[k.pk for k in due]))
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and not r.getMessage().startswith("key cache")
    ]
    assert len(warnings) == 1 and "Redis did not answer" in warnings[0], warnings
