"""A full key pasted into the admin never reaches a URL or a log, and a leaked key can be
revoked from the admin by its value (POST only), as `apikey revoke --leaked` does."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.urls import reverse

from audit.models import AuditAction, AuditEntry
from keys import crypto
from keys.models import APIKey
from tests.helpers import ROOT, bearer, page_text

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:keys_apikey_changelist")
AUDIT_URL = reverse("admin:audit_auditentry_changelist")
LEAKED_URL = reverse("admin:keys_apikey_revoke_leaked")


def secret_of(full: str) -> str:
    return full.split("_", 2)[2]


@pytest.mark.parametrize(
    ("url", "other"), [(LIST_URL, ("status", "active")), (AUDIT_URL, ("action", "generated"))]
)
def test_a_full_key_in_a_search_url_is_redirected_to_its_public_id(
    admin_client: Any, make_key: Any, url: str, other: tuple[str, str]
) -> None:
    key, full = make_key(name="Zapier")
    response = admin_client.get(url, {"q": full, other[0]: other[1]})
    assert response.status_code == 302
    location = response["Location"]
    assert secret_of(full) not in location
    assert f"q=icrm_{key.public_id}" in location and "=".join(other) in location
    page = admin_client.get(location)
    html = page.content.decode()
    assert secret_of(full) not in html
    assert "Zapier" in html
    # ...and offers to revoke it, without the secret in the message or the session.
    assert LEAKED_URL in html and "contained a full API key" in page_text(html)
    for session in Session.objects.all():
        assert secret_of(full) not in str(session.get_decoded())


def test_any_admin_parameter_holding_a_key_is_cleaned(admin_client: Any, make_key: Any) -> None:
    key, full = make_key()
    response = admin_client.get(AUDIT_URL, {"key_public_id": full})
    assert response.status_code == 302
    assert secret_of(full) not in response["Location"]
    assert f"key_public_id=icrm_{key.public_id}" in response["Location"]


def test_the_redirect_happens_before_login(client: Any, make_key: Any) -> None:
    _, full = make_key()
    response = client.get(LIST_URL, {"q": full})
    assert response.status_code == 302 and secret_of(full) not in response["Location"]


def test_revoke_a_leaked_key_by_its_value(admin_client: Any, make_key: Any, api: Any) -> None:
    key, full = make_key(name="Website form")
    page = admin_client.get(LEAKED_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'method="post"' in html and 'autocomplete="off"' in html
    response = admin_client.post(LEAKED_URL, {"full_key": full, "reason": "found on GitHub"})
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:keys_apikey_change", args=[key.pk])
    assert api.get("/api/v1/contacts/", **bearer(full)).status_code == 401
    entry = AuditEntry.objects.get(key_id=key.pk, action=AuditAction.REVOKED)
    assert entry.message == "revoked: reported leaked (found on GitHub)"
    assert entry.actor_label == "admin"
    shown = admin_client.get(response["Location"]).content.decode()
    assert "revoked as leaked" in page_text(shown)
    for text in (shown, str(list(AuditEntry.objects.values()))):
        assert secret_of(full) not in text
    for session in Session.objects.all():
        assert secret_of(full) not in str(session.get_decoded())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("icrm_" + "A" * 12 + "_" + "B" * 38, "mistyped: its checksum does not match"),
        ("nonsense", "not a well-formed"),
        ("x" * 10_000, "not a well-formed"),
        ("", "Paste the full key"),
    ],
)
def test_bad_values_are_a_form_error(admin_client: Any, value: str, message: str) -> None:
    response = admin_client.post(LEAKED_URL, {"full_key": value})
    assert response.status_code == 200
    assert message in response.content.decode()


def test_an_unknown_key_is_a_form_error_and_revokes_nothing(
    admin_client: Any, make_key: Any
) -> None:
    key, _ = make_key()
    response = admin_client.post(LEAKED_URL, {"full_key": crypto.make_key(key.public_id).full})
    assert response.status_code == 200
    assert "No API key matches that value." in response.content.decode()
    assert APIKey.objects.get(pk=key.pk).revoked_at is None


def test_an_already_revoked_key_is_said_so(admin_client: Any, make_key: Any) -> None:
    _, full = make_key()
    admin_client.post(LEAKED_URL, {"full_key": full})
    again = admin_client.post(LEAKED_URL, {"full_key": full})
    assert again.status_code == 200 and "already revoked" in again.content.decode()
    assert AuditEntry.objects.filter(action=AuditAction.REVOKED).count() == 1


def test_the_leaked_key_form_needs_the_revoke_permission(staff_client: Any, make_key: Any) -> None:
    _, full = make_key()
    viewer = staff_client("keys.view_apikey")
    assert viewer.get(LEAKED_URL).status_code == 403
    assert viewer.post(LEAKED_URL, {"full_key": full}).status_code == 403
    assert APIKey.objects.get().revoked_at is None
    revoker = staff_client("keys.view_apikey", "keys.revoke_apikey")
    assert revoker.get(LEAKED_URL).status_code == 200
    assert revoker.post(LEAKED_URL, {"full_key": full}).status_code == 302


def test_the_list_links_to_the_leaked_key_form_for_revokers(admin_client: Any) -> None:
    assert LEAKED_URL in admin_client.get(LIST_URL).content.decode()


def test_runserver_access_log_never_holds_a_key(make_key: Any) -> None:
    """runserver's request line (django.server) is redacted by the logging filter."""
    _, full = make_key()
    handler = logging.getLogger("django.server").handlers[0]
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        (f"GET /admin/keys/apikey/?q={full} HTTP/1.1", "302", "0"),
        None,
    )
    assert all(f.filter(record) for f in handler.filters)
    line = record.getMessage()
    assert secret_of(full) not in line and f"icrm_{crypto.parse_key(full)}…" in line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_access_log_never_holds_a_key_sent_in_the_url(tmp_path: Path) -> None:
    full = crypto.make_key().full
    port = _free_port()
    log = tmp_path / "access.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_keys.settings",
        "CRM_KEYS_READ_DOTENV": "0",
        "CRM_KEYS_VAR_DIR": str(tmp_path),
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": "gunicorn-log-test-secret",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
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
            str(log),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/?q={full}", timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert "/admin/login/" in text  # the log really was written
    assert secret_of(full) not in text
