"""Usage tests run on both counter backends: in-process (no Redis) always, and Redis when
REDIS_URL is set in the environment (CI's second run). The background shipper is off: counts
move only when a test ships or flushes, so every figure is deterministic."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from crm_keys.redis_client import get_redis
from keys import denials, ratelimit, usage

ENV_REDIS_URL = os.environ.get("REDIS_URL", "")
BACKENDS = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not ENV_REDIS_URL, reason="REDIS_URL is not set"),
    ),
]


def clear_usage_keys() -> None:
    """Delete this app's usage counters (never FLUSHDB: other tests share the database)."""
    client = get_redis()
    if client is not None:
        for name in client.scan_iter(f"{usage.PREFIX}*", count=1000):
            client.delete(name)


@pytest.fixture(autouse=True)
def usage_settings(settings) -> Iterator[None]:
    settings.API_KEYS = {
        **settings.API_KEYS,
        "USAGE_SHIP_INTERVAL": 0,
        "ALERT_RECIPIENTS": ["ops@example.com", "security@example.com"],
    }
    usage.reset()
    ratelimit.reset_local_state()
    denials.reset_local_state()
    yield
    usage.reset()


@pytest.fixture(params=BACKENDS)
def backend(request, settings) -> Iterator[str]:
    """The counter backend of this test: "memory" (REDIS_URL unset) or "redis"."""
    settings.REDIS_URL = ENV_REDIS_URL if request.param == "redis" else ""
    clear_usage_keys()
    yield request.param
    clear_usage_keys()
