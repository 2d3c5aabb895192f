"""Usage counters in Redis: the live hash every process ships into, and its hand-over to the
flush. Fields are ``<key id>|<epoch hour>|r|<endpoint>`` (requests), ``…|e|…`` (errors) and
``<key id>|u`` (last used, epoch seconds); ``-`` stands for an unknown key. A key's clients are
``<key id>|c|<ip>|<user agent>`` (requests), ``…|f|…`` and ``…|l|…`` (first and last seen),
with ``<key id>|cn`` counting its distinct clients (at most ``4 x CLIENTS_PER_KEY`` per
hand-over); its errors a ring of ``RECENT_ERRORS_PER_KEY`` fields ``<key id>|x|<slot>`` (JSON)
written round ``<key id>|xn``, so the hash stays bounded per key whatever the traffic.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from crm_keys.redis_client import get_redis

from ..conf import key_settings
from .callers import Callers, clients_per_key, errors_per_key
from .rows import Cell

PREFIX = "icrm:usage:"
LIVE = PREFIX + "live"  # the hash every process ships into
FLUSHING = PREFIX + "flushing:"  # + token: a handed-over hash, until its rows are committed
HANDED_OVER = PREFIX + "handed-over"  # set of tokens whose hash is not yet cleaned up
SEQ = PREFIX + "seq:"  # + process id: the last batch sequence the live hash received
UNKNOWN_FIELD = "-"  # key-id part of a Redis field for requests with an unknown key

_SHIP_LUA = """
-- KEYS[1] live hash, KEYS[2] this process's sequence marker
-- ARGV[1..8]: sequence, hash ttl, marker ttl, number of counter pairs, number of last-used
-- pairs, number of clients, number of errors, client cap per key; error ring size in ARGV[9];
-- then counter pairs, last-used pairs, clients (key, ip|agent, requests, first, last), errors
-- (key, json)
local seq = tonumber(ARGV[1])
if seq <= tonumber(redis.call('GET', KEYS[2]) or '0') then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
local function keep_max(name, value)
  local seen = redis.call('HGET', KEYS[1], name)
  if (not seen) or tonumber(seen) < tonumber(value) then redis.call('HSET', KEYS[1], name, value) end
end
local function keep_min(name, value)
  local seen = redis.call('HGET', KEYS[1], name)
  if (not seen) or tonumber(seen) > tonumber(value) then redis.call('HSET', KEYS[1], name, value) end
end
local i = 10
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for _ = 1, tonumber(ARGV[5]) do
  keep_max(ARGV[i], ARGV[i + 1])
  i = i + 2
end
local cap = tonumber(ARGV[8])
for _ = 1, tonumber(ARGV[6]) do
  local key, who = ARGV[i], ARGV[i + 1]
  local name = key .. '|c|' .. who
  if redis.call('HEXISTS', KEYS[1], name) == 1
      or redis.call('HINCRBY', KEYS[1], key .. '|cn', 1) <= cap then
    redis.call('HINCRBY', KEYS[1], name, ARGV[i + 2])
    keep_min(key .. '|f|' .. who, ARGV[i + 3])
    keep_max(key .. '|l|' .. who, ARGV[i + 4])
  end
  i = i + 5
end
local ring = tonumber(ARGV[9])
for _ = 1, tonumber(ARGV[7]) do
  local n = redis.call('HINCRBY', KEYS[1], ARGV[i] .. '|xn', 1)
  redis.call('HSET', KEYS[1], ARGV[i] .. '|x|' .. ((n - 1) % ring), ARGV[i + 1])
  i = i + 2
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_HANDOVER_LUA = """
-- KEYS[1] live hash, KEYS[2] flushing hash, KEYS[3] set of handed-over tokens
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""


def redis_ttl() -> int:
    """How long counters survive in Redis when no flush collects them."""
    return int(key_settings.USAGE_REDIS_TTL)


def _field(key_id: int | None, hour: int, kind: str, endpoint: str) -> str:
    return f"{UNKNOWN_FIELD if key_id is None else key_id}|{hour}|{kind}|{endpoint}"


def ship_batch(
    client: redis.Redis,
    *,
    process_id: str,
    seq: int,
    counts: Mapping[Cell, Sequence[int]],
    last_used: Mapping[int, float],
    callers: Callers | None = None,
) -> None:
    """Add one batch of a process's counts, clients and errors to the live hash (one Lua
    call). A batch whose sequence the hash already received from this process is ignored, so
    a re-sent batch (its reply was lost) is not counted twice."""
    callers = callers or Callers()
    pairs: list[Any] = []
    for (key_id, hour, endpoint), (requests, errors) in counts.items():
        pairs += [_field(key_id, hour, "r", endpoint), requests]
        if errors:
            pairs += [_field(key_id, hour, "e", endpoint), errors]
    used = [item for key_id, when in last_used.items() for item in (f"{key_id}|u", f"{when:.6f}")]
    who: list[Any] = []
    for (key_id, ip, agent), (requests, first, last) in callers.clients.items():
        who += [key_id, f"{ip}|{agent}", int(requests), f"{first:.6f}", f"{last:.6f}"]
    events = [
        item
        for key_id, errors in callers.errors.items()
        for event in errors
        for item in (key_id, json.dumps(event, separators=(",", ":")))
    ]
    header = [
        seq,
        redis_ttl(),
        86400,
        len(pairs) // 2,
        len(used) // 2,
        len(who) // 5,
        len(events) // 2,
        4 * clients_per_key(),
        errors_per_key(),
    ]
    client.eval(_SHIP_LUA, 2, LIVE, SEQ + process_id, *header, *pairs, *used, *who, *events)


@dataclass
class Shipment:
    """What a live or flushing hash holds: cells, last used, clients and errors."""

    counts: dict[Cell, list[int]] = field(default_factory=dict)
    last_used: dict[int, float] = field(default_factory=dict)
    callers: Callers = field(default_factory=Callers)

    def __bool__(self) -> bool:
        return bool(self.counts or self.last_used or self.callers)


def parse_fields(raw: Mapping[bytes | str, bytes | str]) -> Shipment:
    """A live or flushing hash -> its Shipment."""
    out = Shipment()
    seen: dict[tuple[int, str, str], list[float]] = {}
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else name
        parts = text.split("|", 3)
        kind = parts[1] if len(parts) > 1 else ""
        if len(parts) == 2:
            if kind == "u":
                out.last_used[int(parts[0])] = float(value)
            continue  # |cn, |xn: bookkeeping of the bounds
        if kind in ("c", "f", "l") and len(parts) == 4:
            slot = {"c": 0, "f": 1, "l": 2}[kind]
            seen.setdefault((int(parts[0]), parts[2], parts[3]), [0, 0.0, 0.0])[slot] = float(value)
            continue
        if kind == "x":
            key_id = int(parts[0])
            event = json.loads(value)
            out.callers.errors.setdefault(key_id, []).append(tuple(event))  # type: ignore[arg-type]
            continue
        key_part, hour, kind, endpoint = parts
        key_id = None if key_part == UNKNOWN_FIELD else int(key_part)
        cell = out.counts.setdefault((key_id, int(hour), endpoint), [0, 0])
        cell[0 if kind == "r" else 1] += int(value)
    for client, (requests, first, last) in seen.items():
        if requests:
            out.callers.clients[client] = [int(requests), first or last, last or first]
    for events in out.callers.errors.values():
        events.sort()
    return out


def pending_of_key(key_id: int) -> Shipment:
    """What one key has shipped to Redis but not yet flushed (empty without Redis or when Redis
    does not answer)."""
    client = get_redis()
    if client is None:
        return Shipment()
    try:
        raw = dict(client.hscan_iter(LIVE, match=f"{key_id}|*", count=5000))
    except redis.RedisError:
        return Shipment()
    return parse_fields(raw)


def hand_over(client: redis.Redis, token: str) -> list[str]:
    """Rename the live hash to a flushing hash under ``token`` (if there is a live hash) and
    return every token handed over and not yet forgotten, oldest work included."""
    client.eval(_HANDOVER_LUA, 3, LIVE, FLUSHING + token, HANDED_OVER, token, redis_ttl())
    return sorted(t.decode() for t in client.smembers(HANDED_OVER))


def read_handed_over(client: redis.Redis, token: str) -> Shipment:
    return parse_fields(client.hgetall(FLUSHING + token))


def forget(client: redis.Redis, token: str) -> None:
    """Drop a hand-over whose rows are committed."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(FLUSHING + token)
    pipe.srem(HANDED_OVER, token)
    pipe.execute()


def clear_all(client: redis.Redis) -> None:
    """Delete this app's usage counters (tests; never FLUSHDB, other data shares the database)."""
    for name in client.scan_iter(f"{PREFIX}*", count=1000):
        client.delete(name)
