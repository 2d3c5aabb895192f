"""audit verify / export through the CLI, and tampering caught by the chain."""

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction

from audit.models import AuditEntry

pytestmark = pytest.mark.django_db


def audit(*args):
    out = io.StringIO()
    call_command("audit", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def three_entries(make_key, actor):
    from keys import services

    key, _ = make_key(name="Chain")
    services.key_update(key=key, data={"name": "Chain 2"}, actor=actor)
    services.key_revoke(key=key, actor=actor)
    assert AuditEntry.objects.count() == 3


def raw_sql(sql, params=()):
    """Tamper the way an attacker with database access would (bypassing the app)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
            c.execute(sql, params)
            c.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only")
    else:
        with connection.cursor() as c:
            c.execute(sql, params)


def test_verify_ok_reports_the_head(three_entries):
    out = audit("verify")
    head = AuditEntry.objects.order_by("-seq").first()
    assert "OK: 3 entries" in out and head.entry_hash in out
    data = json.loads(audit("verify", "--json"))
    assert data == {
        "ok": True,
        "count": 3,
        "head_seq": 3,
        "head_hash": head.entry_hash,
        "problem": "",
    }


def test_verify_detects_a_changed_entry(three_entries):
    raw_sql("UPDATE audit_auditentry SET key_name = 'innocent' WHERE seq = 2")
    with pytest.raises(CommandError, match="entry #2 was changed"):
        audit("verify")


def test_verify_detects_a_removed_entry(three_entries):
    raw_sql("DELETE FROM audit_auditentry WHERE seq = 2")
    with pytest.raises(CommandError, match="#2 was removed"):
        audit("verify")


def test_verify_detects_an_inserted_entry(three_entries):
    # Renumber to make room and insert a forged entry: the forged one cannot carry a valid hash.
    raw_sql("UPDATE audit_auditentry SET seq = seq + 100 WHERE seq = 3")
    raw_sql(
        "INSERT INTO audit_auditentry (seq, created_at, actor_label, action, key_public_id, key_name, "
        "message, prev_hash, entry_hash, user_agent, mac) "
        "SELECT 3, created_at, 'mallory', 'edited', key_public_id, key_name, '', entry_hash, %s, '', "
        "mac "
        "FROM audit_auditentry WHERE seq = 2",
        ["f" * 64],
    )
    with pytest.raises(CommandError, match=r"#3 was changed|#4 was removed"):
        audit("verify")


def test_verify_detects_a_removed_last_entry_only_through_the_recorded_head(three_entries):
    head = json.loads(audit("verify", "--json"))
    raw_sql("DELETE FROM audit_auditentry WHERE seq = 3")
    after = json.loads(audit("verify", "--json"))
    assert after["ok"] and (after["count"], after["head_hash"]) != (
        head["count"],
        head["head_hash"],
    )


def test_export_json_lines_with_a_date_range(three_entries):
    lines = audit("export").strip().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    assert audit("export", "--since", "2000-01-01", "--until", "2000-12-31") == ""
    with pytest.raises(CommandError, match="not a date"):
        audit("export", "--since", "yesterday")


def test_export_takes_the_extreme_dates(three_entries):
    """The first and last days a date can be: every entry, no traceback."""
    lines = audit("export", "--since", "0001-01-01", "--until", "9999-12-31").splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgres_trigger_refuses_update_and_delete(three_entries):
    from django.db import DatabaseError

    for sql in ("UPDATE audit_auditentry SET message = 'x'", "DELETE FROM audit_auditentry"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as c,
        ):
            c.execute(sql)
    assert AuditEntry.objects.count() == 3
