"""The audit hash chain: canonical content of an entry, its MAC, and the walk that verifies it.

Each entry's ``entry_hash`` is the SHA-256 of its content and the previous entry's hash (the
chain: an entry changed, removed or inserted breaks it). Anyone who can write the table can
recompute SHA-256 hashes, so each entry also carries ``mac``: an HMAC-SHA256 of its hash under
the chain key, which is not in the database (``AUDIT_CHAIN_KEY``, by default derived from the
API key pepper). A rewrite with recomputed hashes then fails the MAC. What no chain can see is
the newest entries cut off: compare with a head recorded outside the database
(``audit verify --expect-head SEQ:HASH``, and the daily ``record_audit_head`` job).

``mac`` is ``<key id>:<hex>``; the key id (8 hex characters of a hash of the key) tells which
key signed, so entries written before a change of key verify with
``AUDIT_CHAIN_PREVIOUS_KEYS``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings

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


# --- the MAC ------------------------------------------------------------------------------------


def chain_key() -> bytes:
    """``AUDIT_CHAIN_KEY``, or else HMAC-SHA256(API key pepper, "crm-keys audit chain"): a key
    the database does not hold (the pepper falls back to SECRET_KEY like the key hashes do)."""
    explicit = getattr(settings, "AUDIT_CHAIN_KEY", "")
    if explicit:
        return explicit.encode()
    from keys.conf import key_settings

    pepper = (key_settings.PEPPER or settings.SECRET_KEY).encode()
    return hmac.new(pepper, b"crm-keys audit chain", hashlib.sha256).hexdigest().encode()


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"crm-keys audit chain key id:" + key).hexdigest()[:8]


def verification_keys() -> dict[str, bytes]:
    """Key id -> key: the current chain key and ``AUDIT_CHAIN_PREVIOUS_KEYS``."""
    keys = [chain_key()] + [k.encode() for k in getattr(settings, "AUDIT_CHAIN_PREVIOUS_KEYS", [])]
    return {key_id(k): k for k in keys}


def entry_mac(hash_hex: str, key: bytes | None = None) -> str:
    key = key if key is not None else chain_key()
    return f"{key_id(key)}:{hmac.new(key, hash_hex.encode(), hashlib.sha256).hexdigest()}"


def mac_problem(seq: int, hash_hex: str, mac: str, keys: dict[str, bytes]) -> str:
    kid, _, _ = (mac or "").partition(":")
    if not mac:
        return f"entry #{seq} has no MAC (written or rewritten without the chain key)"
    key = keys.get(kid)
    if key is None:
        return (
            f"entry #{seq} is signed with chain key {kid!r}, which is not configured "
            "(AUDIT_CHAIN_KEY, AUDIT_CHAIN_PREVIOUS_KEYS)"
        )
    if not hmac.compare_digest(entry_mac(hash_hex, key), mac):
        return (
            f"entry #{seq}'s MAC does not match its hash under the chain key: it was rewritten "
            "(the hashes recomputed) by someone without the key"
        )
    return ""


_HEAD = re.compile(r"([0-9]{1,18}):([0-9a-fA-F]{64})")


def parse_head(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as ``audit verify`` prints it; ValueError otherwise."""
    match = _HEAD.fullmatch((text or "").strip().lstrip("#"))
    if match is None or int(match.group(1)) < 1:
        raise ValueError("Expected the head as SEQ:HASH, e.g. 1234:9f86d0…(64 hex characters).")
    return int(match.group(1)), match.group(2).lower()  # hex is hex in either case


@dataclass
class VerifyResult:
    ok: bool
    count: int
    head_hash: str
    head_seq: int
    problem: str = ""


def verify(
    rows: Iterator[dict[str, Any]], *, expect_head: tuple[int, str] | None = None
) -> VerifyResult:
    """Walk entries in ``seq`` order. Reports the first one that was changed, removed, inserted
    or rewritten without the chain key, and, with ``expect_head``, a recorded head that is no
    longer in the chain (the log was cut back or rewritten after it)."""
    keys = verification_keys()
    prev_hash, expected_seq, count, head_seq = GENESIS, 1, 0, 0

    def broken(problem: str) -> VerifyResult:
        return VerifyResult(False, count, prev_hash, head_seq, problem)

    for row in rows:
        seq = row["seq"]
        if seq != expected_seq:
            what = "removed" if seq > expected_seq else "inserted"
            return broken(f"entry #{expected_seq} was {what} (found #{seq} next)")
        if row["prev_hash"] != prev_hash:
            return broken(
                f"entry #{seq} does not follow entry #{seq - 1} (chain broken: "
                "an entry was removed, inserted or changed)"
            )
        if entry_hash(row) != row["entry_hash"]:
            return broken(f"entry #{seq} was changed")
        problem = mac_problem(seq, row["entry_hash"], row.get("mac", ""), keys)
        if problem:
            return broken(problem)
        if (
            expect_head is not None
            and seq == expect_head[0]
            and row["entry_hash"] != expect_head[1]
        ):
            return broken(
                f"entry #{seq} is not the head recorded earlier ({expect_head[1][:16]}…): "
                "the log was rewritten from there on"
            )
        prev_hash, expected_seq, count, head_seq = row["entry_hash"], seq + 1, count + 1, seq
    if expect_head is not None and head_seq < expect_head[0]:
        return broken(
            f"entry #{expect_head[0]} (the head recorded earlier) is missing: the log was "
            f"truncated to {count} entries"
        )
    return VerifyResult(True, count, prev_hash, head_seq)
