"""The audit hash chain: canonical content of an entry and the walk that verifies it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq",
    "created_at",
    "actor_label",
    "actor_user_id",
    "ip",
    "user_agent",
    "action",
    "key_id",
    "key_public_id",
    "key_name",
    "before",
    "after",
    "message",
    "prev_hash",
)


def _normal(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


def canonical(values: dict[str, Any]) -> bytes:
    return json.dumps(
        {f: _normal(values[f]) for f in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode()


def entry_hash(values: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(values)).hexdigest()


@dataclass
class VerifyResult:
    ok: bool
    count: int
    head_hash: str
    head_seq: int
    problem: str = ""


def verify(rows: Iterator[dict[str, Any]]) -> VerifyResult:
    """Walk entries in ``seq`` order. Reports the first one that was changed, removed or inserted."""
    prev_hash, expected_seq, count, head_seq = GENESIS, 1, 0, 0
    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            what = "removed" if seq > expected_seq else "inserted"
            return VerifyResult(
                False,
                count,
                prev_hash,
                head_seq,
                f"entry #{expected_seq} was {what} (found #{seq} next)",
            )
        if row["prev_hash"] != prev_hash:
            return VerifyResult(
                False,
                count,
                prev_hash,
                head_seq,
                f"entry #{seq} does not follow entry #{seq - 1} (chain broken: "
                "an entry was removed, inserted or changed)",
            )
        if entry_hash(row) != row["entry_hash"]:
            return VerifyResult(False, count, prev_hash, head_seq, f"entry #{seq} was changed")
        prev_hash, expected_seq, count, head_seq = row["entry_hash"], seq + 1, count + 1, seq
    return VerifyResult(True, count, prev_hash, head_seq)
