"""Usage tracking (request path side): count each request for its key, with no I/O.

``record_request`` appends to an in-process buffer; a background shipper moves the buffer to
Redis (when REDIS_URL is set) or straight into hourly rows. The flush job turns Redis counters
into hourly rows. See issue "usage tracking" for the full design.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import datetime
from functools import lru_cache

from django.http import HttpRequest
from django.utils import timezone

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@lru_cache(maxsize=1024)
def endpoint_label(method: str, route: str) -> str:
    """``GET`` + ``api/v1/^contacts/(?P<id>[^/.]+)/$`` -> ``GET /api/v1/contacts/{id}/``."""
    pattern = route.replace("^", "").replace("$", "").replace("\\.", ".")
    pattern = _GROUP.sub(r"{\1}", pattern)
    pattern = _CONVERTER.sub(r"{\1}", pattern)
    return f"{method} /{pattern.lstrip('/')}"


def request_endpoint(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    route = match.route if match is not None else "(unmatched)"
    return endpoint_label(request.method or "GET", route)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


class Buffer:
    """Thread-safe in-process counters: (key_id, hour, endpoint) -> [requests, errors]."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple] = Counter()
        self._last_used: dict[int, datetime] = {}

    def add(self, key_id: int | None, endpoint: str, is_error: bool, when: datetime) -> None:
        hour = hour_of(when)
        with self._lock:
            self._counts[(key_id, hour, endpoint, "r")] += 1
            if is_error:
                self._counts[(key_id, hour, endpoint, "e")] += 1
            if key_id is not None:
                self._last_used[key_id] = when

    def take(self) -> tuple[Counter[tuple], dict[int, datetime]]:
        with self._lock:
            counts, last_used = self._counts, self._last_used
            self._counts, self._last_used = Counter(), {}
        return counts, last_used


buffer = Buffer()


def record_request(request: HttpRequest, status_code: int) -> None:
    key = getattr(request, "api_key", None)
    buffer.add(
        key.pk if key is not None else None,
        request_endpoint(request),
        status_code >= 400,
        timezone.now(),
    )
