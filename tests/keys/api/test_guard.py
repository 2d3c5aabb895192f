"""Requests refused before any view (keys/api/guard.py): a body sent without Content-Length
(chunked) is a JSON 411 that closes the connection, on the real servers, so no write is lost
behind a 200 and no leftover chunk is read as another request."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crm.models import Contact
from keys import services
from tests.helpers import ROOT, free_port, gunicorn, process_env, wait_for

pytestmark = pytest.mark.django_db


def raw_exchange(base: str, request: bytes) -> bytes:
    """Send ``request`` on one connection and read until the server closes it (or goes
    quiet): everything it answered."""
    host, port = base.removeprefix("http://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        conn.settimeout(5)
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            received += b"<connection left open>"
    return received


def chunked_request(method: str, path: str, key: str, body: bytes) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    return head + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


@contextmanager
def runserver(tmp_path: Path) -> Iterator[str]:
    """``manage.py runserver`` (DEBUG on, as ``make run``) on the test database."""
    port = free_port()
    env = process_env(tmp_path, DJANGO_DEBUG="1")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            urllib.request.urlopen(base + "/api/v1/key/", timeout=2)
        except urllib.error.HTTPError:
            return True
        except OSError:
            return server.poll() is not None
        return True

    try:
        assert wait_for(up) and server.poll() is None, "runserver did not start"
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(params=["gunicorn", "runserver"])
def server(request, tmp_path) -> Iterator[str]:
    with (gunicorn if request.param == "gunicorn" else runserver)(tmp_path) as base:
        yield base


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["PATCH", "PUT", "POST"])
def test_a_chunked_body_is_a_411_that_closes_the_connection(server, actor, method):
    key = services.key_generate(
        name="Chunks", scopes={"contacts": ["view", "create", "edit"]}, actor=actor
    ).full_key
    contact = Contact.objects.create(first_name="A", last_name="B", title="Before")
    path = f"/api/v1/contacts/{contact.pk}/" if method != "POST" else "/api/v1/contacts/"
    body = b'{"first_name": "A", "last_name": "B", "title": "X"}'
    answer = raw_exchange(server, chunked_request(method, path, key, body))
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411 "), answer[:300]
    headers = head.decode("latin-1").lower()
    assert "connection: close" in headers
    assert "content-type: application/json" in headers
    assert b"Content-Length" in rest  # the detail says what to send
    # One answer, then the server hung up: the chunk was not read as another request.
    assert answer.count(b"HTTP/1.") == 1, answer
    assert b"<connection left open>" not in answer
    contact.refresh_from_db()
    assert contact.title == "Before"
    assert Contact.objects.count() == 1


def test_a_transfer_encoding_is_refused_through_the_test_client(api, make_key):
    key = make_key({"contacts": ["view", "edit"]})[1]
    contact = Contact.objects.create(first_name="A", last_name="B", title="Before")
    response = api.patch(
        f"/api/v1/contacts/{contact.pk}/",
        data=b"",
        content_type="application/json",
        HTTP_X_API_KEY=key,
        HTTP_TRANSFER_ENCODING="chunked",
    )
    assert response.status_code == 411
    assert "Content-Length" in response.json()["detail"]
    # No length of its own: runserver then closes the connection (the real-server test above).
    assert not response.has_header("Content-Length")
    contact.refresh_from_db()
    assert contact.title == "Before"


def cut_short(base: str, request: bytes) -> bytes:
    """Send ``request``, then half-close (the client stops sending), and read the answer."""
    host, port = base.removeprefix("http://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(10)
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["PATCH", "POST"])
def test_a_body_cut_short_of_its_content_length_changes_nothing(server, actor, method):
    """A client that announced 100 bytes and sent 31 (then stopped): what arrived happens to be
    valid JSON, and was applied as if whole (200/201). Now a 400 that says so."""
    key = services.key_generate(
        name="Cut", scopes={"contacts": ["view", "create", "edit"]}, actor=actor
    ).full_key
    contact = Contact.objects.create(first_name="A", last_name="B", title="Before")
    path = f"/api/v1/contacts/{contact.pk}/" if method != "POST" else "/api/v1/contacts/"
    body = b'{"first_name": "T", "last_name": "R"}'
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 60}\r\n\r\n"
    ).encode()
    answer = cut_short(server, head + body)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"cut short" in answer
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name) == ("A", "B")
    assert Contact.objects.count() == 1
