"""How a change to a key reaches the key cache of every process, exactly, at almost no cost to
a request. Two channels; the request thread checks both before it trusts a cached record.

The change file (``<var dir>/key-changes``, every process of one machine)
    Its first 8 bytes count the changes. After commit, a service that changed a key adds one
    (under an ``flock``, so two changes never count as one). Each process maps the file into
    memory; each request compares the counter with what its process saw last (a memory read,
    no system call) and forgets every cached record when it moved.

Redis pub/sub (with REDIS_URL: processes on other machines)
    A watcher thread per process holds the subscription, applies each message (the public id
    that changed) and PINGs every ``PING_EVERY`` seconds. The request thread trusts the cache
    only while the subscription has answered within ``SILENCE_LIMIT`` (so a Redis that hangs,
    alive but silent, turns every process's cache off within about a second), and first
    applies any message already waiting on the socket (a zero-timeout ``poll``: no round
    trip). A lost or re-established subscription empties the cache.

The changing side (``announce``, after commit): count the change in the file, publish, and when
Redis does not confirm the publish, retry for about a second; if it still fails, wait until
every process that cannot hear Redis has stopped trusting its cache, then report the problem: a
process on another machine that still hears Redis may keep its copy until the cache's backstop
age. The report goes to whoever asked for it (``reporting_to``: the CLI, the admin) and to the
log; the change itself is committed either way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import secrets
import select
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from crm_keys.redis_client import get_redis, request_call

from .. import process
from ..conf import key_settings

logger = logging.getLogger(__name__)

CHANNEL = "icrm:keys:changed"
PING_EVERY = 0.2  # seconds between PINGs on the subscription
SILENCE_LIMIT = 1.0  # a subscription silent for longer is not trusted
RECONNECT_EVERY = 1.0  # seconds between subscription attempts while Redis is away
TIMEOUT = 0.25  # socket timeouts for the subscription and the publish
PUBLISH_ATTEMPTS = 3
PUBLISH_BACKOFF = 0.1


# --- the change file ------------------------------------------------------------------------

COUNTER = struct.Struct("<Q")  # the file's first 8 bytes: the machine's change counter
RECHECK_EVERY = 1.0  # seconds between checks that the mapped file is still the one at the path


class ChangeFile:
    """This process's view of the change file: mapped into memory, so the request thread reads
    the counter without a system call. Every ``RECHECK_EVERY`` seconds a ``stat()`` checks the
    path still names the mapped file (a file deleted and re-created under a running app is
    picked up then; a new file starts at a random count, so it never repeats the old one)."""

    def __init__(self) -> None:
        self._map: mmap.mmap | None = None
        self._path = ""
        self._ident: tuple[int, int] | None = None
        self._checked_at = float("-inf")

    def read(self, path: str) -> bytes | None:
        """The counter as last written, or None when the file cannot be used (no cache then)."""
        if path != self._path or time.monotonic() - self._checked_at > RECHECK_EVERY:
            self._check(path)
        return self._map[:8] if self._map is not None else None

    def _check(self, path: str) -> None:
        self._checked_at = time.monotonic()
        try:
            with contextlib.suppress(FileNotFoundError):  # (created below)
                st = os.stat(path)
                if path == self._path and (st.st_dev, st.st_ino) == self._ident:
                    return
            fd = _open_counter(path)
            try:
                st = os.fstat(fd)
                mapped = mmap.mmap(fd, COUNTER.size, prot=mmap.PROT_READ)
            finally:
                os.close(fd)
        except (OSError, ValueError):
            self._map, self._path, self._ident = None, path, None
            return
        self._map, self._path, self._ident = mapped, path, (st.st_dev, st.st_ino)


def _open_counter(path: str) -> int:
    """The file, created if need be with a random count (under the lock, so two processes
    creating it at once agree on it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if os.fstat(fd).st_size < COUNTER.size:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < COUNTER.size:
                os.pwrite(fd, COUNTER.pack(secrets.randbits(64)), 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError:
        os.close(fd)
        raise
    return fd


def bump_file(path: str) -> None:
    """Count one change, under an exclusive lock so concurrent bumps never collapse into one."""
    fd = _open_counter(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        (count,) = COUNTER.unpack(os.pread(fd, COUNTER.size, 0))
        os.pwrite(fd, COUNTER.pack((count + 1) % 2**64), 0)
    finally:
        os.close(fd)  # releases the lock


# --- the subscription -----------------------------------------------------------------------

_start_lock = threading.Lock()


def _after_fork() -> None:
    global _start_lock
    _start_lock = threading.Lock()  # the parent's may have been held by another thread


os.register_at_fork(after_in_child=_after_fork)


class Subscription:
    """The Redis side of one process: a watcher thread and what the request thread asks it."""

    def __init__(self, on_change: Callable[[str | None], None]) -> None:
        self.on_change = on_change  # a public id that changed, or None: forget everything
        self._lock = threading.Lock()  # held while reading from the connection
        self._conn: Any = None
        self._poll: Any = None  # a poll object on the connection's socket
        self._heard_at = float("-inf")
        self._next_ping = 0.0
        self._pid: int | None = None
        self._url = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def listening(self, url: str) -> bool:
        """Request thread: apply what has arrived; True when every change published so far has
        been applied and the subscription is alive (answered within SILENCE_LIMIT)."""
        if self._pid != process.pid() or url != self._url:
            with _start_lock:
                if self._pid != process.pid() or url != self._url:
                    self._start(url)
        with self._lock:
            conn = self._conn
            if conn is None:
                return False
            try:
                if self._poll.poll(0):
                    self._drain(conn)
                silent = time.monotonic() - self._heard_at
                if silent > SILENCE_LIMIT:  # dropped for good: trusted again only afresh
                    raise redis.TimeoutError(f"no answer for {silent:.1f} s")
            except Exception as exc:
                self._drop(exc)
                return False
            return True

    def _start(self, url: str) -> None:
        if self._pid == process.pid():
            self.stop()  # another URL: the old watcher goes
        # (After a fork the parent's watcher does not exist here, its lock may be held for
        # good and its connection is not ours: start afresh.)
        self._lock = threading.Lock()
        self._conn, self._poll, self._heard_at = None, None, float("-inf")
        self._url, self._pid = url, process.pid()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(self._stop,), name="key-cache-subscription", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._pid != process.pid():  # forked: nothing here is ours to close or wait for
            self._thread, self._conn, self._poll = None, None, None
            return
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2)
        self._thread = None
        with self._lock:
            self._close()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            conn = self._conn
            if conn is None:
                if not self._subscribe(stop):
                    stop.wait(RECONNECT_EVERY)
                continue
            wait = max(0.0, self._next_ping - time.monotonic())
            try:
                readable = select.select([conn._sock], [], [], wait)[0]
            except (OSError, ValueError, TypeError):  # closed under us: the read below fails
                readable = [True]
            with self._lock:
                if self._conn is not conn or stop.is_set():
                    continue
                try:
                    if readable:
                        self._drain(conn)
                    now = time.monotonic()
                    if now >= self._next_ping:
                        conn.send_command("PING", check_health=False)
                        self._next_ping = now + PING_EVERY
                    if now - self._heard_at > SILENCE_LIMIT:
                        raise redis.TimeoutError(f"no answer for {now - self._heard_at:.1f} s")
                except Exception as exc:
                    self._drop(exc)

    def _subscribe(self, stop: threading.Event) -> bool:
        try:
            client = redis.Redis.from_url(
                self._url,
                socket_timeout=TIMEOUT,
                socket_connect_timeout=TIMEOUT,
                health_check_interval=0,
                retry=Retry(NoBackoff(), 0),  # a lost connection is dropped, never resumed
                protocol=2,  # messages and PONGs as plain replies, on any Redis version
            )
            conn = client.connection_pool.make_connection()
            conn.connect()
            conn.send_command("SUBSCRIBE", CHANNEL, check_health=False)
            reply = conn.read_response()
            if not (isinstance(reply, list) and reply[0] == b"subscribe"):
                raise redis.ConnectionError(f"unexpected reply to SUBSCRIBE: {reply!r}"[:200])
        except Exception as exc:
            with contextlib.suppress(Exception):
                conn.disconnect()  # type: ignore[possibly-undefined]
            if not self._failing:  # once per outage, not every RECONNECT_EVERY
                logger.warning("key cache: cannot subscribe to Redis (%s)", type(exc).__name__)
                self._failing = True
            return False
        with self._lock:
            if stop.is_set():  # stopped while connecting
                conn.disconnect()
                return False
            # Anything may have changed while this process was not listening.
            self.on_change(None)
            self._poll = select.poll()
            self._poll.register(conn._sock, select.POLLIN)
            self._conn, self._heard_at = conn, time.monotonic()
            self._next_ping = self._heard_at + PING_EVERY
        self._failing = False
        logger.info("key cache: subscribed to key changes")
        return True

    def _drain(self, conn: Any) -> None:
        """Apply every complete message waiting on the connection (lock held)."""
        while conn.can_read(timeout=0):
            reply = conn.read_response()
            self._heard_at = time.monotonic()
            if isinstance(reply, list) and reply and reply[0] == b"message":
                data = reply[2]
                self.on_change(None if data == b"*" else data.decode())

    def _drop(self, exc: Exception) -> None:
        """Lock held. Stop trusting the cache, forget it, reconnect from the watcher."""
        self._close()
        self.on_change(None)
        logger.warning(
            "key cache off (%s: %s): lookups read the database until Redis answers again",
            type(exc).__name__,
            exc,
        )

    def _close(self) -> None:
        conn, self._conn, self._heard_at, self._poll = self._conn, None, float("-inf"), None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.disconnect()


# --- announcing a change --------------------------------------------------------------------

_reporters = threading.local()


@contextmanager
def reporting_to(report: Callable[[str], None]) -> Iterator[None]:
    """Within the block, problems announcing a change (on this thread) also go to ``report``:
    the CLI prints them and fails, the admin shows them as a warning."""
    previous = getattr(_reporters, "report", None)
    _reporters.report = report
    try:
        yield
    finally:
        _reporters.report = previous


def _report(problem: str, *, urgent: bool) -> None:
    if not urgent:  # a new key, a job's record of what is already enforced: the log is enough
        logger.info("%s", problem)  # (the Redis outage itself is logged once, by the breaker)
        return
    logger.error("%s", problem)
    report = getattr(_reporters, "report", None)
    if report is not None:
        report(problem)


def announce(public_id: str, *, path: str | None, url: str, urgent: bool, what: str) -> bool:
    """After commit: tell every process that ``public_id`` changed. ``urgent`` changes (a
    revocation, a scope or limit change, a rotation) retry the publish and, when Redis never
    confirmed it, wait out SILENCE_LIMIT before reporting. ``what`` names the change for the
    report. Returns True when every channel took it."""
    problems = []
    if path is not None:
        try:
            bump_file(path)
        except OSError as exc:
            problems.append(
                f"the change file {path} could not be updated ({exc.strerror}), so other "
                "processes on this machine may use their cached copy"
            )
    if url:
        failure = _publish(public_id, urgent=urgent)
        if failure is not None:
            first_attempt, exc = failure
            if urgent:
                # Had Redis hung since then, every process listening to it has stopped
                # trusting its cache by this deadline.
                deadline = first_attempt + TIMEOUT + SILENCE_LIMIT + 0.1
                time.sleep(max(0.0, deadline - time.monotonic()))
            problems.append(
                f"Redis did not confirm the notification ({type(exc).__name__}): processes on "
                "this machine and any process that has lost Redis too no longer use their "
                "cached copy, but a process on another machine that still reaches Redis may "
                f"use it for up to {key_settings.LOOKUP_CACHE_SECONDS} s "
                "(API_KEY_LOOKUP_CACHE_SECONDS)"
            )
    if not problems:
        return True
    _report(f"The {what} is saved, but " + "; ".join(problems) + ".", urgent=urgent)
    return False


def _publish(public_id: str, *, urgent: bool) -> tuple[float, Exception] | None:
    """None when published; else when the first attempt started and the last error. A change
    that is not urgent is published once, through the circuit breaker: a job revoking 500 keys
    while Redis hangs must not wait 0.25 s for each."""
    first = time.monotonic()
    if not urgent:
        done = request_call(
            "a key-change notice", lambda client: client.publish(CHANNEL, public_id)
        )
        return None if done is not None else (first, redis.ConnectionError("Redis unavailable"))
    client = get_redis()
    error: Exception = redis.ConnectionError("no Redis client")
    for attempt in range(PUBLISH_ATTEMPTS):
        if attempt:
            time.sleep(PUBLISH_BACKOFF * attempt)
        try:
            if client is not None:
                client.publish(CHANNEL, public_id)
                return None
        except redis.RedisError as exc:
            error = exc
    return first, error
