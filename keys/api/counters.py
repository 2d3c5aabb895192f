"""Fixed-window counters shared by the processes of one machine, for when there is no Redis.

Without Redis each web process used to count for itself, so a limit of 10 a minute let 20
through two gunicorn workers. These counters live in a small SQLite file of their own
(``API_KEYS["COUNTERS_FILE"]``, default ``<var dir>/rate-limits.sqlite3``), not in the app's
database: one atomic upsert per counted event, in WAL mode without fsync (a counter lost to a
power cut is harmless), so every process on the machine sees the same count. Only counted
events pay for it (requests of keys that have a rate limit, and failed authentications); a
request of a key without a limit never touches the file. Processes on other machines have
their own file: a deployment on several machines needs Redis for one limit across them.

The caller falls back to in-process counting if the file cannot be used (read-only disk,
locked for longer than the timeout), with a warning in the log.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path

from django.conf import settings

from .. import process
from ..conf import key_settings

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hits (bucket TEXT NOT NULL, window INTEGER NOT NULL, "
    "expires REAL NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (bucket, window)) WITHOUT ROWID"
)
_UPSERT = (
    "INSERT INTO hits (bucket, window, expires, count) VALUES (?, ?, ?, 1) "
    "ON CONFLICT (bucket, window) DO UPDATE SET count = count + 1 RETURNING count"
)
_BUSY_TIMEOUT = 0.5  # seconds a process waits for another's write before falling back
_SETUP_ATTEMPTS = 30  # about 4.5 s in all


def counters_path() -> Path:
    return Path(key_settings.COUNTERS_FILE or Path(settings.VAR_DIR) / "rate-limits.sqlite3")


class MachineCounters:
    """One SQLite connection per thread and process (never shared across a fork)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._pruned_at = 0.0

    def _connection(self) -> sqlite3.Connection:
        path = str(counters_path())
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.owner == (process.pid(), path):
            return conn
        conn = sqlite3.connect(
            path, timeout=_BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
        try:
            self._prepare(conn)
        except sqlite3.Error:
            conn.close()
            raise
        self._local.conn, self._local.owner = conn, (process.pid(), path)
        return conn

    @staticmethod
    def _prepare(conn: sqlite3.Connection) -> None:
        """WAL mode and the table. Switching a new file to WAL needs the file to itself, and
        SQLite answers "database is locked" at once (no busy wait) when another process is
        doing the same: processes starting together retry for a while."""
        for attempt in range(_SETUP_ATTEMPTS):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute(_SCHEMA)
                return
            except sqlite3.OperationalError:
                if attempt == _SETUP_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def hit(self, bucket: str, window_id: int, window: int) -> int:
        """Count one event in ``bucket`` for this window; returns the count so far. Raises
        sqlite3.Error when the file cannot be used."""
        conn = self._connection()
        now = time.time()
        (count,) = conn.execute(_UPSERT, (bucket, window_id, (window_id + 1) * window)).fetchone()
        if now - self._pruned_at > 60:  # old windows go once a minute per process
            self._pruned_at = now
            conn.execute("DELETE FROM hits WHERE expires < ?", (now,))
        return int(count)

    def clear(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._connection().execute("DELETE FROM hits")


machine = MachineCounters()
