"""Usage counters in Redis: the live hash every process ships into, and its hand-over to the
flush. Fields are ``<key id>|<epoch hour>|r|<endpoint>`` (requests), ``…|e|…`` (errors) and
``<key id>|u`` (last used, epoch seconds); ``-`` stands for an unknown key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import redis

from crm_keys.redis_client import get_redis

from ..conf import key_settings
from .rows import Cell

PREFIX = "icrm:usage:"
LIVE = PREFIX + "live"  # the hash every process ships into
FLUSHING = PREFIX + "flushing:"  # + token: a handed-over hash, until its rows are committed
HANDED_OVER = PREFIX + "handed-over"  # set of tokens whose hash is not yet cleaned up
SEQ = PREFIX + "seq:"  # + process id: the last batch sequence the live hash received
UNKNOWN_FIELD = "-"  # key-id part of a Redis field for requests with an unknown key

_SHIP_LUA = """
-- KEYS[1] live hash, KEYS[2] this process's sequence marker
-- ARGV: sequence, hash ttl, marker ttl, number of counter pairs, counter pairs, last-used pairs
local seq = tonumber(ARGV[1])
if seq <= tonumber(redis.call('GET', KEYS[2]) or '0') then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[3])
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  local seen = redis.call('HGET', KEYS[1], ARGV[i])
  if (not seen) or tonumber(seen) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
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
) -> None:
    """Add one batch of a process's counts to the live hash (one Lua call). A batch whose
    sequence the hash already received from this process is ignored, so a re-sent batch (its
    reply was lost) is not counted twice."""
    args: list[Any] = [seq, redis_ttl(), 86400, 0]
    pairs = 0
    for (key_id, hour, endpoint), (requests, errors) in counts.items():
        args += [_field(key_id, hour, "r", endpoint), requests]
        pairs += 1
        if errors:
            args += [_field(key_id, hour, "e", endpoint), errors]
            pairs += 1
    args[3] = pairs
    for key_id, when in last_used.items():
        args += [f"{key_id}|u", f"{when:.6f}"]
    client.eval(_SHIP_LUA, 2, LIVE, SEQ + process_id, *args)


def parse_fields(
    raw: Mapping[bytes | str, bytes | str],
) -> tuple[dict[Cell, list[int]], dict[int, float]]:
    """A live or flushing hash -> (cells, last used)."""
    counts: dict[Cell, list[int]] = {}
    last_used: dict[int, float] = {}
    for name, value in raw.items():
        text = name.decode() if isinstance(name, bytes) else name
        parts = text.split("|", 3)
        if len(parts) == 2 and parts[1] == "u":
            last_used[int(parts[0])] = float(value)
            continue
        key_part, hour, kind, endpoint = parts
        key_id = None if key_part == UNKNOWN_FIELD else int(key_part)
        cell = counts.setdefault((key_id, int(hour), endpoint), [0, 0])
        cell[0 if kind == "r" else 1] += int(value)
    return counts, last_used


def pending_for_key(key_id: int) -> tuple[dict[tuple[int, str], list[int]], float | None]:
    """Counts of one key shipped to Redis but not yet flushed: ({(hour, endpoint): [requests,
    errors]}, last used epoch). Empty without Redis or when Redis does not answer."""
    client = get_redis()
    if client is None:
        return {}, None
    try:
        raw = dict(client.hscan_iter(LIVE, match=f"{key_id}|*", count=5000))
    except redis.RedisError:
        return {}, None
    counts, last_used = parse_fields(raw)
    return {(hour, endpoint): c for (_, hour, endpoint), c in counts.items()}, last_used.get(key_id)


def hand_over(client: redis.Redis, token: str) -> list[str]:
    """Rename the live hash to a flushing hash under ``token`` (if there is a live hash) and
    return every token handed over and not yet forgotten, oldest work included."""
    client.eval(_HANDOVER_LUA, 3, LIVE, FLUSHING + token, HANDED_OVER, token, redis_ttl())
    return sorted(t.decode() for t in client.smembers(HANDED_OVER))


def read_handed_over(
    client: redis.Redis, token: str
) -> tuple[dict[Cell, list[int]], dict[int, float]]:
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
