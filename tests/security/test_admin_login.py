"""Brute force on /admin/login/ (second security review, item 3): 100 wrong passwords in 24 s,
then the right one logged in. Now the username and the address are locked after a handful of
failures (or the address only, with ADMIN_LOGIN_LOCK_USERNAME=0), with a message saying when to
try again, an audit entry, and a command to unlock. Through real HTTP, against gunicorn."""

from __future__ import annotations

import http.cookiejar
import io
import re
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from audit.models import AuditAction, AuditEntry
from tests.helpers import gunicorn

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery staple"
LIMIT = 5


class Browser:
    """A cookie-keeping HTTP client posting the admin login form as a browser would."""

    def __init__(self, base: str, forwarded_for: str) -> None:
        self.base = base
        self.headers = {"X-Forwarded-For": forwarded_for, "User-Agent": "brute/1.0"}
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def open(self, path: str, data: dict[str, str] | None = None) -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        headers = {**self.headers}
        if data is not None:
            headers["Referer"] = self.base + path
        request = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=20) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()

    def login(self, username: str, password: str) -> tuple[int, str, str]:
        _, _, page = self.open("/admin/login/?next=/admin/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert token, page[:500]
        return self.open(
            "/admin/login/?next=/admin/",
            {
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "password": password,
                "next": "/admin/",
            },
        )


SERVER_ENV = {
    "TRUSTED_PROXY_COUNT": "1",
    "SESSION_COOKIE_SECURE": "0",
    "CSRF_COOKIE_SECURE": "0",
    "ADMIN_LOGIN_FAILURE_LIMIT": str(LIMIT),
}


@pytest.fixture
def server(tmp_path: Any) -> Any:
    """The default: the username and the address are locked."""
    with gunicorn(tmp_path, **SERVER_ENV) as base:
        yield base


@pytest.fixture
def address_only_server(tmp_path: Any) -> Any:
    """ADMIN_LOGIN_LOCK_USERNAME=0: addresses are locked, usernames never."""
    with gunicorn(tmp_path, **SERVER_ENV, ADMIN_LOGIN_LOCK_USERNAME="0") as base:
        yield base


def make_admin(django_user_model: Any, username: str) -> None:
    """A superuser whose password the server can check: the suite hashes with MD5 for speed,
    which the production settings gunicorn runs with do not accept."""
    user = django_user_model.objects.create_superuser(username, f"{username}@example.com")
    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "testsalt1234", iterations=1000)
    user.save(update_fields=["password"])


def logged_in(result: tuple[int, str, str]) -> bool:
    status, url, page = result
    return status == 200 and url.endswith("/admin/") and "Log out" in page


def test_wrong_passwords_lock_the_account_everywhere_then_an_admin_unlocks_it(
    server: str, django_user_model: Any
) -> None:
    """The default: guesses spread over many addresses still lock the account."""
    make_admin(django_user_model, "alice")
    for i in range(LIMIT):
        Browser(server, f"198.51.100.{100 + i}").login("alice", f"guess-{i}")
    elsewhere = Browser(server, "203.0.113.44")
    refused = elsewhere.login("alice", PASSWORD)
    assert refused[0] == 429 and not logged_in(refused)
    assert "for this username or from this address: login is locked for 15 minutes" in refused[2]
    assert "unlock_login" not in refused[2]  # the page is shown to anyone: no command on it
    entry = AuditEntry.objects.get(action=AuditAction.LOGIN_LOCKED_OUT)
    assert "'alice'" in entry.message and PASSWORD not in entry.message

    out = io.StringIO()
    call_command("unlock_login", "--user", "alice", stdout=out)
    assert "alice" in out.getvalue()
    assert AuditEntry.objects.filter(action=AuditAction.LOGIN_UNLOCKED).exists()
    assert logged_in(elsewhere.login("alice", PASSWORD))


def test_address_only_locks_the_address_not_the_account_then_an_admin_unlocks_it(
    address_only_server: str, django_user_model: Any
) -> None:
    """ADMIN_LOGIN_LOCK_USERNAME=0 (nobody can lock an admin out by guessing for their
    username): the guessing address is locked, the account still opens elsewhere."""
    server = address_only_server
    make_admin(django_user_model, "alice")
    attacker = Browser(server, "198.51.100.31")
    before = timezone.now()
    results = [attacker.login("alice", f"guess-{i}") for i in range(LIMIT + 3)]
    assert [r[0] for r in results[: LIMIT - 1]] == [200] * (LIMIT - 1)  # the form, with an error
    assert {r[0] for r in results[LIMIT:]} == {429}
    locked_page = results[-1][2]
    assert "from this address: login is locked for 15 minutes" in locked_page
    assert "for this username" not in locked_page
    # When to try again: the time the lock ends, as a clock time with its zone.
    until = re.search(r"Try again after (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", locked_page)
    assert until, locked_page[:2000]
    ends = datetime.strptime(until.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert before + timedelta(minutes=14) <= ends <= timezone.now() + timedelta(minutes=16)

    # The right password no longer opens it from the attacker's address...
    assert not logged_in(attacker.login("alice", PASSWORD))
    entries = AuditEntry.objects.filter(action=AuditAction.LOGIN_LOCKED_OUT)
    assert entries.count() == 1
    entry = entries.first()
    assert "198.51.100.31" in entry.message and entry.ip == "198.51.100.31"
    assert PASSWORD not in entry.message and "guess" not in entry.message
    # ...but alice, elsewhere, is not locked out by someone else's guesses.
    assert logged_in(Browser(server, "203.0.113.44").login("alice", PASSWORD))

    out = io.StringIO()
    call_command("unlock_login", "--ip", "198.51.100.31", stdout=out)
    assert "198.51.100.31" in out.getvalue()
    assert AuditEntry.objects.filter(action=AuditAction.LOGIN_UNLOCKED).exists()
    assert logged_in(attacker.login("alice", PASSWORD))


def test_many_usernames_from_one_address_lock_the_address(
    server: str, django_user_model: Any
) -> None:
    make_admin(django_user_model, "bob")
    sprayer = Browser(server, "198.51.100.32")
    codes = [sprayer.login(f"user{i}", "Winter2026!")[0] for i in range(LIMIT + 2)]
    assert codes[-1] == 429
    assert not logged_in(sprayer.login("bob", PASSWORD))  # even the right account, from there
    assert logged_in(Browser(server, "203.0.113.45").login("bob", PASSWORD))
    call_command("unlock_login", "--ip", "198.51.100.32", stdout=io.StringIO())
    assert logged_in(sprayer.login("bob", PASSWORD))


def test_unlock_needs_a_user_or_an_address() -> None:
    with pytest.raises(CommandError, match="--user"):
        call_command("unlock_login")
