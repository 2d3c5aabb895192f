"""Mail servers for the outbox tests, on 127.0.0.1: a real SMTP server (aiosmtpd) that keeps
what it accepted and can hold its reply, and a stalled one that accepts connections and never
answers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.helpers import free_port

__all__ = ["MailServer", "StalledServer", "free_port", "smtp_env", "use"]


def use(settings: Any, port: int, *, timeout: int = 10) -> None:
    """Point Django's SMTP backend at 127.0.0.1:``port``."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_TIMEOUT = timeout


def smtp_env(port: int, *, timeout: int = 10) -> dict[str, str]:
    """The same, for a subprocess's environment."""
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_TIMEOUT": str(timeout),
    }


class MailServer:
    """A working SMTP server. ``messages`` holds what it accepted. After ``hold()``, a message
    is kept as soon as its data has arrived, but the "250 accepted" reply waits for
    ``release()``: the moment between the server having a message and the sender knowing."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.received = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(
        self, server: Any, session: Any, envelope: Any
    ) -> str:  # aiosmtpd calls it by this name
        raw = envelope.original_content or envelope.content
        self.messages.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        self.received.set()
        await asyncio.get_running_loop().run_in_executor(None, self._released.wait)
        return "250 Message accepted for delivery"

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> MailServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._controller.stop()


class StalledServer:
    """Accepts TCP connections and never says a word (not even the SMTP greeting), until
    ``release()`` closes them."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.connected = threading.Event()
        self._done = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._connections.append(conn)
            self.connected.set()

    def release(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.close()
        self._listener.close()

    def __enter__(self) -> StalledServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._done.is_set():
            self.release()
