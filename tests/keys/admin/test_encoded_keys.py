"""A full key pasted percent-encoded (once, twice, every character, lower-case hex) is treated
like a plain one: the admin redirects to the clean URL and no log line we, runserver or gunicorn
write holds the secret in any decoding."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from django.urls import reverse

from keys import crypto
from tests.helpers import ROOT, page_text

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:keys_apikey_changelist")
AUDIT_URL = reverse("admin:audit_auditentry_changelist")
LEAKED_URL = reverse("admin:keys_apikey_revoke_leaked")


def _every_char(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


# How a key can be written in a URL, as the raw text after "?q=" or in a path segment.
ENCODINGS: dict[str, Callable[[str], str]] = {
    "underscores": lambda k: k.replace("_", "%5F"),
    "lower-case hex": lambda k: k.replace("_", "%5f"),
    "every character": _every_char,
    "twice": lambda k: quote(k.replace("_", "%5F"), safe=""),
    "prefix only": lambda k: "%69crm" + k[4:],
}


def fully_decoded(text: str) -> str:
    for _ in range(5):
        text = unquote(text)
    return text


def secret_of(full: str) -> str:
    return full.split("_", 2)[2]


def holds_secret(text: str, full: str) -> bool:
    return secret_of(full) in fully_decoded(text) or secret_of(full) in text


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(("url", "param"), [(LIST_URL, "q"), (AUDIT_URL, "key_public_id")])
def test_an_encoded_key_in_an_admin_query_is_redirected_to_its_public_id(
    admin_client: Any, make_key: Any, url: str, param: str, encoding: str
) -> None:
    key, full = make_key(name="Zapier")
    response = admin_client.get(f"{url}?{param}={ENCODINGS[encoding](full)}&o=1")
    assert response.status_code == 302
    location = response["Location"]
    assert not holds_secret(location, full)
    assert f"{param}=icrm_{key.public_id}" in location and "o=1" in location
    page = admin_client.get(location)
    assert page.status_code == 200
    assert not holds_secret(page.content.decode(), full)
    assert "contained a full API key" in page_text(page.content.decode())


@pytest.mark.parametrize("encoding", ["plain", *ENCODINGS])
def test_a_key_in_an_admin_path_is_redirected_without_its_secret(
    admin_client: Any, make_key: Any, encoding: str
) -> None:
    """A key typed where an id goes (/admin/keys/apikey/<key>/change/) must not reach the page,
    the "doesn't exist" message (stored in the session) or the history."""
    key, full = make_key()
    written = full if encoding == "plain" else ENCODINGS[encoding](full)
    response = admin_client.get(f"/admin/keys/apikey/{written}/change/")
    assert response.status_code == 302
    assert not holds_secret(response["Location"], full)
    assert f"icrm_{key.public_id}" in response["Location"]
    followed = admin_client.get(response["Location"], follow=True)
    for step, _ in followed.redirect_chain:
        assert not holds_secret(step, full)
    assert not holds_secret(followed.content.decode(), full)


@pytest.mark.parametrize("encoding", ["plain", *ENCODINGS])
def test_every_log_line_is_redacted_whatever_the_encoding(encoding: str) -> None:
    """The filter on every handler we configure (runserver's access log, the console)."""
    import logging

    full = crypto.make_key().full
    line = f"GET /admin/keys/apikey/?q={ENCODINGS.get(encoding, str)(full)} HTTP/1.1"
    for logger in ("django.server", "django", ""):
        for handler in logging.getLogger(logger).handlers:
            if type(handler).__module__.startswith("_pytest"):
                continue
            record = logging.LogRecord(
                logger, logging.INFO, __file__, 1, '"%s" %s', (line, "302"), None
            )
            assert all(f.filter(record) for f in handler.filters)
            assert not holds_secret(handler.format(record), full)
            assert f"icrm_{crypto.parse_key(full)}" in handler.format(record)


def test_a_traceback_holding_a_key_is_redacted() -> None:
    import logging

    full = crypto.make_key().full
    handler = next(
        h
        for h in logging.getLogger("django").handlers
        if not type(h).__module__.startswith("_pytest")
    )
    try:
        raise ValueError(f"bad value {full.replace('_', '%5F')}")
    except ValueError:
        record = logging.LogRecord("django", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
    assert all(f.filter(record) for f in handler.filters)
    text = handler.format(record)
    assert "ValueError" in text and not holds_secret(text, full)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_keys.settings",
        "CRM_KEYS_READ_DOTENV": "0",
        "CRM_KEYS_VAR_DIR": str(tmp_path),
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": "encoded-log-test-secret",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return env


def _get(url: str) -> None:
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(url, timeout=5)


def _wait_and_request(port: int, paths: list[str]) -> None:
    for _ in range(300):
        try:
            _get(f"http://127.0.0.1:{port}/admin/login/")
            break
        except OSError:
            time.sleep(0.1)
    for path in paths:
        _get(f"http://127.0.0.1:{port}{path}")


def _paths(full: str) -> list[str]:
    return [f"/admin/login/?q={encode(full)}" for encode in ENCODINGS.values()] + [
        f"/admin/keys/apikey/{ENCODINGS['underscores'](full)}/change/",
        f"/nowhere/{ENCODINGS['twice'](full)}",
    ]


def test_runserver_output_never_holds_an_encoded_key(tmp_path: Path) -> None:
    full = crypto.make_key().full
    port = _free_port()
    env = _server_env(tmp_path)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    out = tmp_path / "runserver.log"
    with out.open("w") as sink:
        server = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "runserver",
                "--noreload",
                "--insecure",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_and_request(port, _paths(full))
        finally:
            server.terminate()
            server.wait(timeout=30)
    text = out.read_text()
    assert text.count("/admin/login/?q=") >= len(ENCODINGS)  # the lines really were written
    assert not holds_secret(text, full)


def test_gunicorn_logs_never_hold_an_encoded_key(tmp_path: Path) -> None:
    full = crypto.make_key().full
    port = _free_port()
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "crm_keys.wsgi",
            "-w",
            "1",
            "-b",
            f"127.0.0.1:{port}",
            "--access-logfile",
            str(access),
            "--error-logfile",
            str(errors),
            "--access-logformat",
            '%(h)s "%(r)s" %(U)s %(q)s %(s)s "%(f)s"',
        ],
        cwd=ROOT,
        env=_server_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_and_request(port, _paths(full))
        # A request line gunicorn cannot parse is logged by its error log, with the line.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            raw.sendall(f"GET /admin/?q={ENCODINGS['underscores'](full)} HTTP/9\r\n\r\n".encode())
            raw.recv(1000)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = access.read_text()
    assert text.count("/admin/login/") >= len(ENCODINGS)
    assert not holds_secret(text, full)
    assert not holds_secret(errors.read_text(), full)
