"""The canary: a key's secret exists only in the response that created it.

Generate a key (CLI and service), use it, fail with it, rotate it, revoke it, then search every
table, every log record (SQL included), Redis and the Celery broker folder for the secret.
"""

import io
import logging
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections

from crm_keys.redis_client import get_redis
from keys import services
from keys.usage import recorder
from tests.helpers import bearer

pytestmark = pytest.mark.django_db


def all_database_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 - table names from introspection
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def redis_text() -> str:
    client = get_redis()
    if client is None:
        return ""
    out = []
    for name in client.scan_iter(count=1000):
        out.append(repr(name))
        kind = client.type(name)
        if kind == b"string":
            out.append(repr(client.get(name)))
        elif kind == b"hash":
            out.append(repr(client.hgetall(name)))
        elif kind == b"list":
            out.append(repr(client.lrange(name, 0, -1)))
        elif kind == b"set":
            out.append(repr(client.smembers(name)))
        elif kind == b"zset":
            out.append(repr(client.zrange(name, 0, -1)))
    return "\n".join(out)


def broker_text() -> str:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    out = []
    for folder in {options.get("data_folder_in"), options.get("processed_folder")} - {None}:
        for path in Path(folder).rglob("*"):
            if path.is_file():
                out.append(path.read_text(errors="replace"))
    return "\n".join(out)


def secret_of(full_key: str) -> str:
    return full_key.split("_", 2)[2]


@pytest.fixture
def sql_logged():
    """Log every SQL statement (with its parameters), as DEBUG would."""
    real = connections["default"]
    before = real.force_debug_cursor
    real.force_debug_cursor = True
    yield
    real.force_debug_cursor = before


def test_canary_key_leaves_no_trace(api, actor, caplog, sql_logged):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django.db.backends")

    out = io.StringIO()
    call_command(
        "apikey",
        "create",
        "--name",
        "Canary",
        "--scope",
        "contacts:view",
        stdout=out,
        stderr=io.StringIO(),
    )
    canary = out.getvalue().strip()
    generated = services.key_generate(name="Canary 2", scopes={"leads": ["view"]}, actor=actor)
    secrets_to_find = [secret_of(canary), secret_of(generated.full_key)]

    assert api.get("/api/v1/contacts/", **bearer(canary)).status_code == 200
    assert api.get("/api/v1/leads/", **bearer(canary)).status_code == 403
    assert api.get("/api/v1/contacts/?api_key=" + canary).status_code == 401
    mistyped = canary[:-1] + ("y" if canary.endswith("x") else "x")  # a different last character
    assert api.get("/api/v1/contacts/", HTTP_X_API_KEY=mistyped).status_code == 401
    assert api.get("/api/v1/key/", **bearer(generated.full_key)).status_code == 200
    # A client that also puts its key in the User-Agent: its client and its error are kept
    # (redacted), the key is not.
    response = api.get(
        "/api/v1/leads/", HTTP_USER_AGENT=f"my-bot/1.0 key={canary}", **bearer(canary)
    )
    assert response.status_code == 403

    rotate_out = io.StringIO()
    call_command(
        "apikey",
        "rotate",
        generated.key.public_id,
        "--grace",
        "1h",
        stdout=rotate_out,
        stderr=io.StringIO(),
    )
    secrets_to_find.append(secret_of(rotate_out.getvalue().strip()))
    assert api.get("/api/v1/leads/", **bearer(generated.full_key)).status_code == 200
    call_command("apikey", "revoke", canary.split("_")[1], "--yes", stdout=io.StringIO())
    assert api.get("/api/v1/contacts/", **bearer(canary)).status_code == 401

    # Ship buffered usage so Redis and the database hold everything they will ever hold.
    recorder.ship()
    redis_before_flush = redis_text()
    call_command("runjob", "flush_usage", stdout=io.StringIO())

    haystacks = {
        "redis before the flush": redis_before_flush,
        "database": all_database_text(),
        "logs": "\n".join(r.getMessage() + repr(r.args) for r in caplog.records),
        "redis": redis_text(),
        "broker": broker_text(),
    }
    assert "keys_apikey" in haystacks["logs"]  # the SQL log really was captured
    assert "my-bot/1.0 key=icrm_[redacted]" in haystacks["database"]  # the client was kept
    for where, text in haystacks.items():
        for secret in secrets_to_find:
            assert secret not in text, f"a key secret was found in the {where}"
