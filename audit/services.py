"""The only writer of the audit log."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from . import chain
from .actors import Actor
from .models import AuditAction, AuditEntry

# Any advisory-lock number unique to this table; serialises writers of the chain on PostgreSQL.
_PG_CHAIN_LOCK = 0x1C4A_0D17
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(value: str | None, limit: int) -> str:
    """Control characters (CR, LF, NUL, ...) stored escaped, so they can never forge a log line
    or break a write (PostgreSQL refuses NUL in text)."""
    if not value:
        return ""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))[:limit]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (date, Decimal)):
        return str(value)
    if isinstance(value, str):
        return clean_text(value, 2000)
    return value


def audit_record(
    *,
    action: AuditAction | str,
    actor: Actor,
    key: Any = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    message: str = "",
) -> AuditEntry:
    """Append one entry, chained to the previous one. Call it inside the transaction of the
    change it records, so the change and its entry commit (or roll back) together."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PG_CHAIN_LOCK])
        last = AuditEntry.objects.order_by("-seq").values("seq", "entry_hash").first()
        values: dict[str, Any] = {
            "seq": (last["seq"] + 1) if last else 1,
            "created_at": timezone.now(),
            "actor_label": clean_text(actor.label, 150),
            "actor_user_id": actor.user_id,
            "ip": actor.ip,
            "user_agent": clean_text(actor.user_agent, 512),
            "action": str(action),
            "key_id": key.pk if key is not None else None,
            "key_public_id": key.public_id if key is not None else "",
            "key_name": clean_text(key.name, 100) if key is not None else "",
            "before": _jsonable(before) if before is not None else None,
            "after": _jsonable(after) if after is not None else None,
            "message": clean_text(message, 500),
            "prev_hash": last["entry_hash"] if last else chain.GENESIS,
        }
        values["entry_hash"] = chain.entry_hash(values)
        values["mac"] = chain.entry_mac(values["entry_hash"])
        entry = AuditEntry(**values)
        entry.save(force_insert=True)
        return entry
