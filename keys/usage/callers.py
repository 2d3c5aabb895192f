"""Who calls with a key: its clients and its errors, recorded like the usage counts.

Request path (``record_caller``, called by the recorder for a request whose key matched)
    One dict update under a lock: the client (address, sanitised User-Agent) gets one more
    request and its last-seen time; an error response also appends (time, method, route,
    status, the ``detail`` sentence, client) to the key's bounded deque. No database, no
    network. The recorder's shipper moves the buffer on with the counts, in the same batch, so
    clients are exact after a flush exactly when the counts are.

What is kept
    - A client is (IP as resolved with TRUSTED_PROXY_COUNT, User-Agent). The User-Agent is
      decoded (UTF-8 sent as bytes), stripped of control and format characters, anything
      shaped like a key is redacted, and it is cut to ``USER_AGENT_MAX`` characters.
    - An error keeps the response's ``detail`` (the 401/403 sentence), or for a validation
      error only the field names and error codes: never a value from the request body.
    - Bounds: ``RECENT_ERRORS_PER_KEY`` errors per key in the buffer (the latest), and at most
      ``4 x CLIENTS_PER_KEY`` new distinct clients per key per ship (one second); beyond that a
      new client waits for the next ship, while known ones keep counting. The tables keep the
      ``CLIENTS_PER_KEY`` most recently seen clients and the latest errors of each key.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import unicodedata
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

from crm_keys.net import client_ip

from ..conf import key_settings
from ..models.usage import DETAIL_MAX, IP_MAX, USER_AGENT_MAX

# (key id, ip, user agent) -> [requests, first seen, last seen] (epoch seconds)
Client = tuple[int, str, str]
# (at, method, route, status, detail, ip, user agent)
ErrorEvent = tuple[float, str, str, int, str, str, str]

_RAW_MAX = 1024  # longest raw header looked at: the cache below must stay small
_KEY_SHAPED = re.compile(r"icrm_[0-9A-Za-z_]*")
REDACTED = "icrm_[redacted]"


def _printable(text: str) -> str:
    """Drop control, format (bidi overrides, zero-width) and unassigned characters; collapse
    whitespace."""
    if text.isascii() and text.isprintable():
        return " ".join(text.split())
    kept = "".join(c for c in text if unicodedata.category(c)[0] != "C")
    return " ".join(kept.split())


def clean_text(text: str, limit: int) -> str:
    """Printable, key-shaped strings redacted, at most ``limit`` characters."""
    text = _KEY_SHAPED.sub(REDACTED, text[: limit * 4])
    return _printable(text)[:limit]


@lru_cache(maxsize=4096)
def clean_user_agent(raw: str) -> str:
    """The User-Agent as kept: see the module docstring. Cached: integrations send the same
    few User-Agents on every request."""
    raw = raw[:_RAW_MAX]
    # WSGI hands headers over as latin-1; most clients that send non-ASCII mean UTF-8.
    with contextlib.suppress(UnicodeError):
        raw = raw.encode("latin-1").decode("utf-8")
    return clean_text(raw, USER_AGENT_MAX)


def error_detail(status: int, response: HttpResponse | None) -> str:
    """The sentence an error response told the client, without anything it sent us."""
    data: Any = getattr(response, "data", None)
    if data is None and isinstance(response, JsonResponse) and len(response.content) < 4096:
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
    if isinstance(data, Mapping) and "detail" in data:
        text = str(data["detail"])
    elif isinstance(data, Mapping) and data:
        # A validation error: its messages may quote the input ('"x" is not a valid choice'),
        # so only field names and error codes are kept.
        parts = [f"{name} ({', '.join(_codes(errors))})" for name, errors in data.items()]
        text = "Invalid input: " + "; ".join(parts)
    elif isinstance(data, list) and data:
        text = "Invalid input: " + ", ".join(_codes(data))
    else:
        try:
            text = HTTPStatus(status).phrase
        except ValueError:
            text = ""
    return clean_text(text, DETAIL_MAX)


def _codes(errors: Any) -> list[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        else:
            found.add(str(getattr(value, "code", None) or "invalid"))

    walk(errors)
    return sorted(found)[:5]


# --- the in-process buffer -----------------------------------------------------------------


@dataclass
class Callers:
    """Clients and errors taken from a buffer, shipped with the counts of the same batch."""

    clients: dict[Client, list[float]] = field(default_factory=dict)
    errors: dict[int, list[ErrorEvent]] = field(default_factory=dict)
    dropped: int = 0  # requests whose new client found the buffer full (not shipped)

    def __bool__(self) -> bool:
        return bool(self.clients or self.errors)

    def key_ids(self) -> set[int]:
        return {key_id for key_id, _, _ in self.clients} | set(self.errors)


def clients_per_key() -> int:
    return int(key_settings.CLIENTS_PER_KEY)


def errors_per_key() -> int:
    return int(key_settings.RECENT_ERRORS_PER_KEY)


class CallerBuffer:
    """Thread-safe: client -> [requests, first, last], key id -> its latest errors."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[Client, list[float]] = {}
        self._new_per_key: dict[int, int] = {}
        self._errors: dict[int, deque[ErrorEvent]] = {}
        self.dropped = 0

    def add(self, client: Client, when: float, error: ErrorEvent | None) -> None:
        with self._lock:
            counts = self._clients.get(client)
            if counts is not None:
                counts[0] += 1
                if when > counts[2]:
                    counts[2] = when
            else:
                key_id = client[0]
                new = self._new_per_key.get(key_id, 0)
                if len(self._clients) >= _max_clients():
                    self.dropped += 1  # the whole buffer is full (Redis down for long): warned
                elif new < 4 * clients_per_key():  # else: picked up when it calls again
                    self._clients[client] = [1, when, when]
                    self._new_per_key[key_id] = new + 1
            if error is not None:
                events = self._errors.get(client[0])
                if events is None:
                    events = self._errors[client[0]] = deque(maxlen=errors_per_key())
                events.append(error)

    def take(self) -> Callers:
        with self._lock:
            clients, errors, dropped = self._clients, self._errors, self.dropped
            self._clients, self._new_per_key, self._errors, self.dropped = {}, {}, {}, 0
        taken = {key_id: list(events) for key_id, events in errors.items()}
        return Callers(clients, taken, dropped)

    def merge(self, callers: Callers) -> None:
        """Put back what a failed write took (it was in the buffer a moment ago)."""
        with self._lock:
            for client, (requests, first, last) in callers.clients.items():
                mine = self._clients.setdefault(client, [0, first, last])
                mine[0] += requests
                mine[1] = min(mine[1], first)
                mine[2] = max(mine[2], last)
            for key_id, events in callers.errors.items():
                merged = sorted([*self._errors.get(key_id, ()), *events])
                self._errors[key_id] = deque(merged, maxlen=errors_per_key())

    def __len__(self) -> int:
        return len(self._clients)


def _max_clients() -> int:
    return int(key_settings.USAGE_BUFFER_MAX_CELLS)


buffer = CallerBuffer()


def record_caller(
    request: HttpRequest,
    key_id: int,
    endpoint: str,
    status_code: int,
    when: float,
    response: HttpResponse | None = None,
) -> None:
    """Count the request for its client, and keep it if it failed. ``endpoint`` is the usage
    label (``GET /api/v1/contacts/{id}/``)."""
    ip = getattr(request, "api_client_ip", None)
    if ip is None:
        ip = client_ip(request) or ""
    user_agent = clean_user_agent(request.META.get("HTTP_USER_AGENT", ""))
    error = None
    if status_code >= 400:
        method, _, route = endpoint.partition(" ")
        detail = error_detail(status_code, response)
        error = (when, method, route, status_code, detail, ip[:IP_MAX], user_agent)
    buffer.add((key_id, ip[:IP_MAX], user_agent), when, error)
