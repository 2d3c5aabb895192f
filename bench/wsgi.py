"""Raw WSGI calls with prepared environs: the same thin driver for every variant, so the
difference between variants is the application's, not the client's."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

HOST = "127.0.0.1"


def make_environ(
    path: str, *, headers: dict[str, str] | None = None, query: str = ""
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": HOST,
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": HOST,
        "HTTP_HOST": HOST,
        "HTTP_ACCEPT": "application/json",
        "HTTP_USER_AGENT": "crm-keys-bench/1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


class Caller:
    """Calls a WSGI app the way a server does: fresh environ copy, consume, close."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._status = ""

    def _start_response(self, status: str, headers: list, exc_info: Any = None) -> Callable:
        self._status = status
        return self._write

    @staticmethod
    def _write(data: bytes) -> None:
        return None

    def __call__(self, template: dict[str, Any]) -> int:
        environ = template.copy()
        environ["wsgi.input"] = io.BytesIO(b"")
        result = self.app(environ, self._start_response)
        try:
            for _chunk in result:
                pass
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(self._status[:3])

    def call_full(self, template: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        environ = template.copy()
        environ["wsgi.input"] = io.BytesIO(b"")
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"] = status
            captured["headers"] = dict(headers)
            return self._write

        result = self.app(environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(captured["status"][:3]), captured["headers"], body


class _ThreadCallCounter:
    """Counts calls a subclass's ``wrap`` patches in, made from the thread inside ``counting``."""

    def __init__(self) -> None:
        self.count = 0
        self._thread: int | None = None
        self._restore: Callable[[], None] | None = None

    def hit(self) -> None:
        if self._thread is not None and threading.get_ident() == self._thread:
            self.count += 1

    def wrap(self) -> Callable[[], None] | None:
        """Patch the calls to count; return how to undo it (None when the library is absent)."""
        raise NotImplementedError

    @contextmanager
    def counting(self) -> Iterator[_ThreadCallCounter]:
        """Counts inside the block only; the timed rounds run unwrapped."""
        if self._restore is None:
            self._restore = self.wrap()
        self.count = 0
        self._thread = threading.get_ident()
        try:
            yield self
        finally:
            self._thread = None
            if self._restore is not None:
                self._restore()
                self._restore = None


class RedisRoundTrips(_ThreadCallCounter):
    """Counts commands sent to Redis from the calling thread (a pipeline is one send)."""

    def wrap(self) -> Callable[[], None] | None:
        try:
            from redis.connection import AbstractConnection
        except ImportError:  # pragma: no cover
            return None
        original = AbstractConnection.send_packed_command
        counter = self

        def send_packed_command(conn: Any, command: Any, check_health: bool = True) -> Any:
            counter.hit()
            return original(conn, command, check_health)

        AbstractConnection.send_packed_command = send_packed_command  # type: ignore[method-assign]
        return lambda: setattr(AbstractConnection, "send_packed_command", original)


redis_round_trips = RedisRoundTrips()


class PostgresRoundTrips(_ThreadCallCounter):
    """Statements psycopg sends from the calling thread, including those Django runs outside
    the query log (the CONN_HEALTH_CHECKS ``SELECT 1`` at a request's first cursor)."""

    def wrap(self) -> Callable[[], None] | None:
        try:
            import psycopg
        except ImportError:  # pragma: no cover
            return None
        counter = self
        originals = []
        for cls in (psycopg.Cursor, psycopg.Connection):
            original = cls.execute
            originals.append((cls, original))

            def execute(obj: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
                counter.hit()
                return _original(obj, *args, **kwargs)

            cls.execute = execute  # type: ignore[method-assign]

        def restore() -> None:
            for cls, original in originals:
                cls.execute = original  # type: ignore[method-assign]

        return restore


postgres_round_trips = PostgresRoundTrips()
