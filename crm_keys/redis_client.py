"""One Redis client per process (or None without REDIS_URL), with short timeouts: a slow or
dead Redis must cost a request milliseconds, never a hang or a 500.

Calls made on the request path go through ``request_call``, a circuit breaker: after a failure
(a 0.25 s timeout against a hung Redis, a refused connection) it stays open for
``BREAKER_SECONDS`` and the callers use their in-process fallback without trying Redis, so a
hung Redis costs one request per process one timeout every few seconds instead of every
request paying it. The fallback is logged once per interval, not once per call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

import redis
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger(__name__)

T = TypeVar("T")

_lock = threading.Lock()

# How long the request path leaves Redis alone after a failure.
BREAKER_SECONDS = 5.0


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


class Breaker:
    """Closed: calls go to Redis. Open (for ``seconds`` after a failure): calls return None at
    once. The first call after the interval tries Redis again (one timeout at most)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._open_until = 0.0
        self._skipped = 0
        self._failing_since: float | None = None

    def call(self, what: str, fn: Callable[[redis.Redis], T]) -> T | None:
        client = get_redis()
        if client is None:
            return None
        if time.monotonic() < self._open_until:
            self._skipped += 1
            return None
        try:
            result = fn(client)
        except redis.RedisError as exc:
            self._failed(what, exc)
            return None
        if self._failing_since is not None:
            logger.warning(
                "Redis answers the request path again after %.0f s",
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
        return result

    def _failed(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        self._open_until = now + self.seconds
        if self._failing_since is None:
            self._failing_since = now
            logger.warning(
                "Redis did not answer (%s, during %s): the request path uses in-process "
                "counters, retrying Redis every %.0f s",
                type(exc).__name__,
                what,
                self.seconds,
            )
        elif self._skipped:
            logger.info(
                "Redis still not answering (%s); %d calls used in-process counters",
                type(exc).__name__,
                self._skipped,
            )
        self._skipped = 0

    def reset(self) -> None:
        self._open_until, self._skipped, self._failing_since = 0.0, 0, None


request_breaker = Breaker(BREAKER_SECONDS)


def request_call(what: str, fn: Callable[[redis.Redis], T]) -> T | None:
    """``fn(client)`` for the request path, or None without Redis, when Redis fails, or while
    the breaker is open after a failure (the caller then uses its in-process fallback)."""
    return request_breaker.call(what, fn)


def reset() -> None:
    """Forget the clients and the breaker (tests that point REDIS_URL elsewhere)."""
    with _lock:
        _client.cache_clear()
    request_breaker.reset()


@receiver(setting_changed)
def _redis_url_changed(*, setting: str, **kwargs: object) -> None:
    if setting == "REDIS_URL":  # another Redis (tests): its own breaker
        request_breaker.reset()
