"""The attacks on the audit log from the second security review (item 2), replayed: a database
user deletes the newest entries, empties the table, or rewrites an entry and recomputes every
hash after it. A recorded head catches the first two; the chain's MAC (under a key that is not
in the database) catches the third."""

from __future__ import annotations

import importlib
import io
import json
import logging
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from audit import chain
from audit.models import AuditEntry
from keys import services
from tests.audit.test_chain import raw_sql

pytestmark = pytest.mark.django_db


def audit(*args: str) -> str:
    out = io.StringIO()
    call_command("audit", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def sixty_entries(make_key: Any, actor: Any) -> dict[str, Any]:
    key, _ = make_key(name="Chain")
    for i in range(59):
        services.key_update(key=key, data={"description": f"edit {i}"}, actor=actor)
    assert AuditEntry.objects.count() == 60
    return json.loads(audit("verify", "--json"))


def test_json_output_keeps_head_seq_and_head_hash(sixty_entries: dict[str, Any]) -> None:
    head = AuditEntry.objects.get(seq=60)
    assert sixty_entries["ok"] is True
    assert (sixty_entries["head_seq"], sixty_entries["head_hash"]) == (60, head.entry_hash)


def test_expect_head_passes_on_an_intact_chain_that_grew(
    sixty_entries: dict[str, Any], make_key: Any
) -> None:
    make_key(name="Later")
    out = audit("verify", "--expect-head", f"60:{sixty_entries['head_hash']}")
    assert "OK: 61 entries" in out and "#60" in out


def test_expect_head_catches_deleted_newest_entries(sixty_entries: dict[str, Any]) -> None:
    raw_sql("DELETE FROM audit_auditentry WHERE seq > 55")
    assert "OK" in audit("verify")  # the chain alone cannot tell a shorter log from a cut one
    with pytest.raises(CommandError, match=r"#60 .*missing.*truncated"):
        audit("verify", "--expect-head", f"60:{sixty_entries['head_hash']}")


def test_expect_head_catches_an_emptied_table(sixty_entries: dict[str, Any]) -> None:
    from django.db import connection

    # TRUNCATE (which no row trigger sees) where the database has it.
    raw_sql(
        "TRUNCATE audit_auditentry"
        if connection.vendor == "postgresql"
        else "DELETE FROM audit_auditentry"
    )
    with pytest.raises(CommandError, match=r"#60 .*missing"):
        audit("verify", "--expect-head", f"60:{sixty_entries['head_hash']}")


def _rewrite_from(seq: int, *, message: str) -> None:
    """What a database-only attacker can do: change an entry, recompute the SHA-256 chain
    after it and copy the MACs over (they cannot compute new ones without the chain key)."""
    rows = list(
        AuditEntry.objects.filter(seq__gte=seq)
        .order_by("seq")
        .values(*chain.HASHED_FIELDS, "entry_hash", "mac")
    )
    prev = AuditEntry.objects.get(seq=seq - 1).entry_hash
    for row in rows:
        if row["seq"] == seq:
            row["message"] = message
        row["prev_hash"] = prev
        new_hash = chain.entry_hash(row)
        raw_sql(
            "UPDATE audit_auditentry SET message = %s, prev_hash = %s, entry_hash = %s "
            "WHERE seq = %s",
            [row["message"], prev, new_hash, row["seq"]],
        )
        prev = new_hash


def test_a_rewrite_with_recomputed_hashes_is_caught_by_the_mac(
    sixty_entries: dict[str, Any],
) -> None:
    _rewrite_from(50, message="nothing to see here")
    with pytest.raises(CommandError, match=r"entry #50.*chain key"):
        audit("verify")
    with pytest.raises(CommandError):
        audit("verify", "--expect-head", f"60:{sixty_entries['head_hash']}")


def test_the_chain_key_is_not_in_the_database_and_can_be_rotated(
    sixty_entries: dict[str, Any], make_key: Any
) -> None:
    old = chain.chain_key()
    with override_settings(AUDIT_CHAIN_KEY="a-new-chain-key-from-the-secret-store"):
        with pytest.raises(CommandError, match=r"entry #1 .*chain key"):
            audit("verify")
        with override_settings(AUDIT_CHAIN_PREVIOUS_KEYS=[old.decode()]):
            make_key(name="Under the new key")
            assert "OK: 61 entries" in audit("verify")
    stored = " ".join(AuditEntry.objects.values_list("mac", flat=True))
    assert old.decode() not in stored and "a-new-chain-key" not in stored


def test_the_default_chain_key_is_derived_from_the_pepper(settings: Any) -> None:
    one = chain.chain_key()
    settings.API_KEYS = {**settings.API_KEYS, "PEPPER": "another-pepper"}
    assert chain.chain_key() != one
    settings.AUDIT_CHAIN_KEY = "explicit"
    assert chain.chain_key() == b"explicit"


@pytest.mark.parametrize(
    "value", ["60", "x:abc", "60:nothex", "-1:" + "0" * 64, "", "٦٠:" + "0" * 64]
)
def test_a_malformed_expected_head_is_a_clear_error(
    sixty_entries: dict[str, Any], value: str
) -> None:
    with pytest.raises(CommandError, match=r"^--expect-head: .*SEQ:HASH"):
        audit("verify", f"--expect-head={value}")


def test_an_expected_head_in_uppercase_hex_is_the_same_head(
    sixty_entries: dict[str, Any],
) -> None:
    """A head copied through a tool (or a person) that upper-cases hex still matches."""
    out = audit("verify", "--expect-head", f"60:{sixty_entries['head_hash'].upper()}")
    assert "The recorded head #60 is still in the chain." in out


def test_chains_written_before_the_mac_still_verify(sixty_entries: dict[str, Any]) -> None:
    """Entries from before this version had no MAC: the migration signs them once."""
    raw_sql("UPDATE audit_auditentry SET mac = ''")
    with pytest.raises(CommandError, match="#1"):
        audit("verify")
    migration = importlib.import_module("audit.migrations.0005_sec_chain_mac")
    from django.apps import apps
    from django.db import connection

    migration.sign_existing_entries(apps, connection.schema_editor())
    assert "OK: 60 entries" in audit("verify")


def test_the_daily_job_records_the_head_outside_the_table(
    sixty_entries: dict[str, Any], settings: Any, tmp_path: Any, caplog: Any
) -> None:
    settings.AUDIT_HEAD_FILE = str(tmp_path / "audit-head.log")
    caplog.set_level(logging.INFO, logger="audit")
    out = io.StringIO()
    call_command("runjob", "record_audit_head", stdout=out)
    assert '"ok": true' in out.getvalue()
    line = (tmp_path / "audit-head.log").read_text().strip().splitlines()[-1]
    assert line.endswith(f" 60:{sixty_entries['head_hash']}")
    assert f"60:{sixty_entries['head_hash']}" in caplog.text  # the log line a SIEM keeps

    # The next run checks against the head it recorded: a cut log is reported, loudly.
    raw_sql("DELETE FROM audit_auditentry WHERE seq > 58")
    caplog.clear()
    call_command("runjob", "record_audit_head", stdout=out)
    assert any(r.levelno == logging.ERROR and "#60" in r.getMessage() for r in caplog.records)
    assert "BROKEN" in (tmp_path / "audit-head.log").read_text()
