"""One Redis client per process (or None without REDIS_URL), with short timeouts: a slow or
dead Redis must cost a request milliseconds, never a hang or a 500."""

from __future__ import annotations

import threading
from functools import lru_cache

import redis
from django.conf import settings

_lock = threading.Lock()


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        socket_timeout=0.25,
        socket_connect_timeout=0.25,
        health_check_interval=30,
        retry_on_timeout=False,
    )


def get_redis() -> redis.Redis | None:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return None
    with _lock:
        return _client(url)
