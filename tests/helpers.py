"""Helpers shared by the tests (fixtures live in the conftest files; these are plain functions)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditEntry
from crm_keys.redis_client import get_redis
from keys import services
from keys.api import protections
from keys.models import APIKey
from keys.usage import recorder, transport

ROOT = Path(__file__).resolve().parents[1]  # the checkout
NONCE_RE = re.compile(r'name="form_nonce" value="([^"]+)"')


def person(username: str, *perms: str, staff: bool = True, **fields: Any) -> Any:
    """A user holding ``perms`` ("crm.add_contact", ...) directly."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user(username=username, password="pw", is_staff=staff, **fields)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # no stale permission cache


def role(name: str, *perms: str) -> Any:
    """A Django group (a role) holding ``perms``."""
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name=name)
    for perm in perms:
        app_label, codename = perm.split(".")
        group.permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return group


def bearer(full_key: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {full_key}"}


ACTOR = Actor(label="test-admin", ip="127.0.0.1", user_agent="pytest")


def generate(name: str = "Integration", **kwargs: object) -> services.Generated:
    kwargs.setdefault("scopes", {"contacts": ["view"]})
    return services.key_generate(name=name, actor=ACTOR, **kwargs)  # type: ignore[arg-type]


def rotated_keys_due(count: int, *, ago: timedelta = timedelta(hours=2)) -> list[APIKey]:
    """``count`` old keys rotated ``ago`` with a one-hour grace, so their grace has ended now
    (by the real clock, which a worker thread also reads)."""
    olds = []
    with time_machine.travel(timezone.now() - ago, tick=False):
        for i in range(count):
            rotated = services.key_rotate(
                key=generate(f"Due {i}").key, grace=timedelta(hours=1), actor=ACTOR
            )
            olds.append(rotated.old_key)
    return olds


def audit_count(key: APIKey, action: str) -> int:
    return AuditEntry.objects.filter(key_id=key.pk, action=action).count()


def chain_ok() -> bool:
    out = io.StringIO()
    call_command("audit", "verify", "--json", stdout=out)
    return json.loads(out.getvalue())["ok"]


def wait_for(condition: Callable[[], bool]) -> bool:
    """Poll for another thread's work. The limit only stops a hang; nothing asserts on time."""
    for _ in range(1200):
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def at(when: datetime) -> time_machine.travel:
    return time_machine.travel(when, tick=False)


def page_text(html: str) -> str:
    """What a reader sees of a page: its text without tags, whitespace collapsed."""
    import html as html_lib

    body = re.sub(r"(?s)<(script|style|svg)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", body))).strip()


def form_nonce(html: str) -> str:
    match = NONCE_RE.search(html)
    assert match, "no form_nonce in the page"
    return match.group(1)


def generate_data(nonce: str, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "form_nonce": nonce,
        "name": "Website form",
        "description": "Contact form on example.com, owner: web team",
        "expiry_policy": "90d",
        "expiry_date": "",
        "scopes__contacts__create": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


# --- another process on the test database -------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    """DATABASE_URL of the test database, for a server or command in another process."""
    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    return (
        f"postgres://{cfg['USER']}@{cfg['HOST'] or '127.0.0.1'}:{cfg['PORT'] or 5432}/{cfg['NAME']}"
    )


def process_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``manage.py`` process on the test database (needs a
    ``transaction=True`` test, so that it sees what the test wrote): no Redis unless given, no
    usage shipper, the suite's pepper."""
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm_keys.settings",
        "CRM_KEYS_READ_DOTENV": "0",
        "CRM_KEYS_VAR_DIR": str(var_dir),
        "DJANGO_DEBUG": "0",
        "SECRET_KEY": "other-process-test-secret",
        "API_KEY_PEPPER": settings.API_KEYS["PEPPER"],
        "DATABASE_URL": database_url(),
        "API_KEY_USAGE_SHIP_INTERVAL": "0",
        **extra,
    }
    if "REDIS_URL" not in extra:
        env.pop("REDIS_URL", None)
    return env


def manage(
    var_dir: Path, *args: str, stdout: str = "pipe", stdin: str | None = None, **env: str
) -> tuple[int, str, str]:
    """``python manage.py ARGS`` in another process on the test database (a ``transaction=True``
    test), as a shell runs it: -> (exit code, stdout, stderr). ``stdout``: "pipe" (read it),
    "full" (``> /dev/full``), "closed" (``>&-``) or "broken-pipe" (the reader is gone before
    anything is written, as with ``| head`` once head has had its lines). ``stdin``: the text
    the command reads. ``env``: more environment (``PYTHONUNBUFFERED=""``: stdout buffered, as
    Python has it by default)."""
    import subprocess
    import sys

    command = [sys.executable, "manage.py", *args]
    if stdout == "closed":
        command = ["bash", "-c", 'exec "$@" >&-', "manage.py", *command]
    with contextlib.ExitStack() as stack:
        target: Any = subprocess.PIPE
        if stdout == "full":
            target = stack.enter_context(open("/dev/full", "w"))
        elif stdout == "broken-pipe":
            read_end, target = os.pipe()
            os.close(read_end)
            stack.callback(os.close, target)
        elif stdout == "closed":
            target = None
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=process_env(var_dir, **env),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            stdout=target,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
            check=False,
        )
    return result.returncode, result.stdout or "", result.stderr


# --- usage: the two counter backends (fixtures, used by tests/keys/usage and tests/keys/alerts) ---
# Usage tests run on both counter backends: in-process (no Redis) always, and Redis when
# REDIS_URL is set in the environment (CI's second run).

ENV_REDIS_URL = os.environ.get("REDIS_URL", "")
BACKENDS = [
    "memory",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(not ENV_REDIS_URL, reason="REDIS_URL is not set"),
    ),
]


def clear_usage_keys() -> None:
    """Delete this app's usage counters (never FLUSHDB: other tests share the database)."""
    client = get_redis()
    if client is not None:
        transport.clear_all(client)


@pytest.fixture
def usage_settings(settings: Any) -> Iterator[None]:
    """No background shipper (counts move when a test ships or flushes) and two alert
    recipients; counters start empty."""
    settings.API_KEYS = {
        **settings.API_KEYS,
        "USAGE_SHIP_INTERVAL": 0,
        "ALERT_RECIPIENTS": ["ops@example.com", "security@example.com"],
    }
    recorder.reset()
    protections.reset_local_state()
    yield
    recorder.reset()


@pytest.fixture(params=BACKENDS)
def backend(request: Any, settings: Any) -> Iterator[str]:
    """The counter backend of this test: "memory" (REDIS_URL unset) or "redis"."""
    settings.REDIS_URL = ENV_REDIS_URL if request.param == "redis" else ""
    clear_usage_keys()
    yield request.param
    clear_usage_keys()


# --- the browser tests ----------------------------------------------------------------------

ADMIN_USER = "root-admin"
ADMIN_PASSWORD = "correct horse battery staple"


def login(page: Any, shot: Callable[..., None] | None = None) -> None:
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    if shot:
        shot(page, "login")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def call_api(
    base_url: str,
    path: str,
    key: str,
    *,
    method: str = "GET",
    body: Any = None,
    agent: str | None = None,
) -> tuple[int, dict[str, str]]:
    """One API request with the stdlib, server to server (no browser headers); ``agent``
    replaces urllib's User-Agent."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if agent is not None:
        headers["User-Agent"] = agent
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


# --- a real server ----------------------------------------------------------------------------


@contextlib.contextmanager
def gunicorn(tmp_path: Path, *, workers: int = 1, **env: str) -> Iterator[str]:
    """The app under gunicorn (DEBUG off) on the test database; yields its base URL. ``env``
    adds to or overrides the environment (e.g. ``API_KEY_AUTH_FAILURES_PER_MINUTE="10"``).
    Stopped with SIGTERM at the end, so its exit hooks run."""
    import subprocess
    import sys

    port = free_port()
    tmp_path.mkdir(parents=True, exist_ok=True)  # (a var dir of its own, for some tests)
    full_env = process_env(tmp_path, SECRET_KEY="gunicorn-test-secret", **env)
    if not full_env.get("REDIS_URL"):
        full_env.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "gunicorn", "crm_keys.wsgi", "-w", str(workers)]
    command += ["-b", f"127.0.0.1:{port}", "--error-logfile", str(tmp_path / "error.log")]
    command += ["--no-control-socket"]  # never take over another instance's (see README)
    command += ["--access-logfile", str(tmp_path / "access.log")]
    server = subprocess.Popen(
        command, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to ~30 s to start; nothing asserts on the time
            try:
                urllib.request.urlopen(base + "/api/v1/key/", timeout=2)
            except urllib.error.HTTPError:
                break  # 401: it is up
            except OSError:
                if server.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            server.kill()
        if server.poll() is not None:
            log = tmp_path / "error.log"
            pytest.fail(
                "gunicorn did not start: " + (log.read_text()[-2000:] if log.exists() else "")
            )
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


def http(
    base_url: str,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, bytes]:
    """One request with the stdlib (no browser headers): (status, body)."""
    request = urllib.request.Request(
        base_url + path, data=data, method=method, headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def status_of(base: str, path: str, key: str) -> int:
    return call_api(base, path, key)[0]


# --- a Redis of the test's own ------------------------------------------------------------------


class OwnRedis:
    """A redis-server of the test's own (never the shared one): it may be paused."""

    def __init__(self, server: Any, port: int) -> None:
        self.server = server
        self.url = f"redis://127.0.0.1:{port}/0"
        self.hung = False

    def hang(self) -> None:
        """Alive but not answering: the process is stopped, its connections stay open."""
        os.kill(self.server.pid, signal.SIGSTOP)
        self.hung = True

    def resume(self) -> None:
        os.kill(self.server.pid, signal.SIGCONT)
        self.hung = False


@contextlib.contextmanager
def own_redis(folder: Path) -> Iterator[OwnRedis]:
    import subprocess

    import redis

    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            *(shutil.which("redis-server") or "redis-server", "--port", str(port)),
            *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    own = OwnRedis(server, port)
    client = redis.Redis.from_url(own.url, socket_timeout=1)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    assert wait_for(answers), "redis-server did not start"
    try:
        yield own
    finally:
        if own.hung:
            own.resume()
        server.terminate()
        server.wait(timeout=10)
