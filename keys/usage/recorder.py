"""Usage recording: count every API request for its key, exactly, without the request paying.

Request path
    ``record_request`` adds one to an in-process cell (key, hour, endpoint) under a lock, and for
    a known key counts its client and keeps its error (``callers``). No database, no network.

Shipping (a daemon thread per process, every ``USAGE_SHIP_INTERVAL`` seconds, and at exit)
    The buffer is taken as a *batch* with a per-process sequence number and moved
    - with ``REDIS_URL``: into the live hash (``transport.ship_batch``, one Lua call). The script
      remembers the last sequence it applied for this process, so a batch whose reply was lost
      is re-sent without counting twice;
    - without Redis: straight into hourly rows (``rows.write_counts``), exactly once per batch
      token.
    A batch that fails stays pending and is retried; new counts accumulate beside it in a
    bounded buffer (when Redis is down long enough to fill half of it, the buffer is written to
    the database instead; past the bound, counts are dropped with a warning). Requests never
    notice.

Process hooks (``install_process_hooks``, from ``KeysConfig.ready()``): a forked child forgets
its parent's buffer (the parent ships it) and every process ships what it holds at exit.
The shipper thread itself starts with a process's first counted request, so a process that
serves no API request (migrate, a Celery worker) runs none.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import redis
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse

from crm_keys.redis_client import get_redis

from .. import process
from ..conf import key_settings
from . import callers, rows, transport
from .callers import Callers, record_caller
from .rows import ENDPOINT_MAX, Cell

logger = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


# --- endpoint labels --------------------------------------------------------------------------

_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


@lru_cache(maxsize=1024)
def endpoint_label(method: str, route: str) -> str:
    """``GET`` + ``api/v1/^contacts/(?P<id>[^/.]+)/$`` -> ``GET /api/v1/contacts/{id}/``."""
    # "/?": API routes take an optional trailing slash; the label is the slashed form.
    pattern = route.replace("^", "").replace("$", "").replace("\\.", ".").replace("/?", "/")
    pattern = _GROUP.sub(r"{\1}", pattern)
    pattern = _CONVERTER.sub(r"{\1}", pattern)
    return f"{method} /{pattern.lstrip('/')}"[:ENDPOINT_MAX]


def request_endpoint(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    route = match.route if match is not None else "(unmatched)"
    method = request.method or "GET"
    # A client with a valid key must not be able to mint unbounded labels with made-up methods.
    return endpoint_label(method if method in METHODS else "OTHER", route)


# --- the in-process buffer -----------------------------------------------------------------


class Buffer:
    """Thread-safe in-process counters: cell -> [requests, errors], and key id -> last used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[Cell, list[int]] = {}
        self._last_used: dict[int, float] = {}
        self.dropped = 0

    def add(self, key_id: int | None, endpoint: str, is_error: bool, when: float) -> None:
        cell = (key_id, int(when // 3600), endpoint)
        with self._lock:
            counts = self._counts.get(cell)
            if counts is None:
                if len(self._counts) >= _max_cells():
                    self.dropped += 1
                    return
                self._counts[cell] = [1, 1 if is_error else 0]
            else:
                counts[0] += 1
                if is_error:
                    counts[1] += 1
            if key_id is not None and when > self._last_used.get(key_id, 0.0):
                self._last_used[key_id] = when

    def take(self) -> tuple[dict[Cell, list[int]], dict[int, float], int]:
        with self._lock:
            counts, last_used, dropped = self._counts, self._last_used, self.dropped
            self._counts, self._last_used, self.dropped = {}, {}, 0
        return counts, last_used, dropped

    def merge(self, counts: Mapping[Cell, Sequence[int]], last_used: Mapping[int, float]) -> None:
        """Put counts back (a write that failed); they were in the buffer a moment ago."""
        with self._lock:
            for cell, (requests, errors) in counts.items():
                mine = self._counts.setdefault(cell, [0, 0])
                mine[0] += requests
                mine[1] += errors
            for key_id, when in last_used.items():
                if when > self._last_used.get(key_id, 0.0):
                    self._last_used[key_id] = when

    def __len__(self) -> int:
        return len(self._counts)

    def reset(self) -> None:
        self._lock = threading.Lock()
        self._counts, self._last_used, self.dropped = {}, {}, 0


def _max_cells() -> int:
    return int(key_settings.USAGE_BUFFER_MAX_CELLS)


buffer = Buffer()


def record_request(
    request: HttpRequest, status_code: int, response: HttpResponse | None = None
) -> None:
    """Count one API request, and for a known key its client (and its error, if it failed;
    ``response`` gives the ``detail`` sentence). The only work on the request path: dict
    updates under a lock. ``time.time()`` rather than ``timezone.now()``: this runs on every
    request, and building a datetime costs more than the rest of this function (time-machine
    moves both clocks)."""
    key = getattr(request, "api_key", None)
    endpoint = request_endpoint(request)
    when = time.time()
    key_id = key.pk if key is not None else None
    buffer.add(key_id, endpoint, status_code >= 400, when)
    if key_id is not None:
        record_caller(request, key_id, endpoint, status_code, when, response)
    if _shipper.pid != process.pid():
        _start_shipper()


# --- shipping -------------------------------------------------------------------------------


@dataclass
class Batch:
    """Counts taken from the buffer, shipped as a unit until delivered."""

    seq: int
    counts: dict[Cell, list[int]]
    last_used: dict[int, float]
    callers: Callers = field(default_factory=Callers)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def requests(self) -> int:
        return sum(c[0] for c in self.counts.values())


class _Shipper:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()  # one ship at a time in this process
        self.pending: Batch | None = None
        self.seq = 0
        self.process_id = f"{socket.gethostname()}:{process.pid()}:{uuid.uuid4().hex[:8]}"
        self.pid: int | None = None  # the process whose thread is running
        self.thread: threading.Thread | None = None
        self.stop = threading.Event()
        self.last_warning: dict[str, float] = {}

    def next_batch(self) -> Batch | None:
        counts, last_used, dropped = buffer.take()
        if dropped:
            _warn("dropped", f"usage buffer full: {dropped} requests were not counted")
        who = callers.buffer.take()
        if who.dropped:
            _warn("clients", f"usage buffer full: {who.dropped} requests' clients not recorded")
        if not counts and not last_used and not who:
            return None
        self.seq += 1
        return Batch(self.seq, counts, last_used, who)


_shipper = _Shipper()
_start_lock = threading.Lock()
_hooks_installed = False


def _warn(kind: str, message: str) -> None:
    """A warning of each kind at most every 30 s: a dead Redis must not flood the log once per
    second."""
    now = time.monotonic()
    if now - _shipper.last_warning.get(kind, -1e9) >= 30:
        _shipper.last_warning[kind] = now
        logger.warning(message)


def _start_shipper() -> None:
    interval = float(key_settings.USAGE_SHIP_INTERVAL or 0)
    if interval <= 0:
        return  # shipping only by flush() (the test settings do this)
    with _start_lock:
        if _shipper.pid == process.pid():
            return
        stop = threading.Event()
        thread = threading.Thread(
            target=_ship_loop, args=(interval, stop), name="usage-shipper", daemon=True
        )
        _shipper.stop, _shipper.thread, _shipper.pid = stop, thread, process.pid()
        thread.start()


# Other in-memory tallies of the request path that this thread writes out too, called as
# ``hook(final=...)`` after each ship (``final`` at exit): e.g. the IP allowlist's refusals.
after_ship: list[Callable[..., Any]] = []


def _run_after_ship(*, final: bool) -> None:
    for hook in after_ship:
        try:
            hook(final=final)
        except Exception:
            logger.exception("usage shipper: %s", getattr(hook, "__qualname__", hook))


def _ship_loop(interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            ship()
            _run_after_ship(final=False)
            close_old_connections()  # honours CONN_MAX_AGE; drops a connection that broke
        except Exception:  # the thread must survive anything
            logger.exception("usage shipper")


def install_process_hooks() -> None:
    """Once per process (``KeysConfig.ready()``): a forked child starts with an empty buffer,
    and the process ships what it holds when it exits."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    os.register_at_fork(after_in_child=_after_fork_in_child)
    atexit.register(_ship_at_exit)


def exit_through_atexit_on_sigterm() -> None:
    """SIGTERM's default action skips atexit, so the last second of counts would be lost. Take
    it over only when nobody else has (gunicorn and Celery install their own handlers, which
    exit through atexit) and we can (main thread). Called by the WSGI entry point."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _exit_on_sigterm)
    except (ValueError, OSError):
        pass


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(128 + signum)


def _ship_at_exit() -> None:
    if _shipper.pid != process.pid():
        return  # no shipper ran here (USAGE_SHIP_INTERVAL = 0: counts move only by flush())
    _shipper.stop.set()
    try:
        ship()
    except Exception:
        logger.exception("usage: shipping at exit failed; those counts are lost")
    _run_after_ship(final=True)


def _after_fork_in_child() -> None:
    # The child's copy of the buffer belongs to the parent, which ships it.
    buffer.reset()
    callers.buffer.reset()
    _shipper.reset()


def reset() -> None:
    """Stop this process's shipper and forget unshipped counts (tests)."""
    _shipper.stop.set()
    if _shipper.thread is not None and _shipper.thread is not threading.current_thread():
        _shipper.thread.join(timeout=5)
    _shipper.reset()
    buffer.reset()
    callers.buffer.reset()


def ship() -> dict[str, Any]:
    """Move this process's counts on: to Redis, or without Redis straight into hourly rows.
    Never raises for an unavailable Redis or database; the counts wait for the next ship."""
    with _shipper.lock:
        client = get_redis()
        shipped = 0
        for _ in range(2):  # the batch a failed ship left behind, then the counts since
            batch = _shipper.pending or _shipper.next_batch()
            if batch is None:
                break
            _shipper.pending = batch
            if not _deliver(batch, client):
                if client is not None and len(buffer) >= _max_cells() // 2:
                    _spill_to_database()
                break
            shipped += batch.requests
            _shipper.pending = None
        waiting = _shipper.pending.requests if _shipper.pending else 0
        return {"shipped": shipped, "pending": waiting}


def _deliver(batch: Batch, client: redis.Redis | None) -> bool:
    if client is not None:
        try:
            transport.ship_batch(
                client,
                process_id=_shipper.process_id,
                seq=batch.seq,
                counts=batch.counts,
                last_used=batch.last_used,
                callers=batch.callers,
            )
            return True
        except redis.RedisError as exc:
            _warn(
                "redis", f"usage: Redis unavailable ({type(exc).__name__}); counts kept in-process"
            )
            return False
    try:
        rows.write_counts(batch.token, batch.counts, batch.last_used, batch.callers)
        return True
    except Exception as exc:
        _warn("database", f"usage: writing hourly rows failed ({type(exc).__name__}); will retry")
        return False


def _spill_to_database() -> None:
    """Redis has been down long enough to fill half the buffer: write the buffer (never sent to
    Redis, so it cannot be counted twice) to the database instead of dropping it."""
    counts, last_used, dropped = buffer.take()
    if dropped:
        _warn("dropped", f"usage buffer full: {dropped} requests were not counted")
    who = callers.buffer.take()
    try:
        rows.write_counts(uuid.uuid4().hex, counts, last_used, who)
    except Exception as exc:
        _warn("database", f"usage: spilling to the database failed ({type(exc).__name__})")
        buffer.merge(counts, last_used)
        callers.buffer.merge(who)
