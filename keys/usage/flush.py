"""The flush (beat, every minute): move every usage counter into hourly rows.

Without Redis it ships this process's buffer (each process also ships its own every second).
With Redis it hands the live hash over atomically (one script: RENAME to ``…:flushing:<token>``
and SADD the token to a set), then for every handed-over token writes the counts, the
last-used times and ``UsageFlush(token)`` in one transaction and only then deletes the flushing
hash. A flush that died before its commit leaves the hash and the token: the next flush writes
them. One that died after its commit leaves a token that ``UsageFlush`` already holds: the next
flush only cleans up. Two flushes racing on one token cannot both commit (``UsageFlush.token``
is unique).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis

from crm_keys.redis_client import get_redis

from . import rows, transport
from .recorder import ship

logger = logging.getLogger(__name__)


def flush() -> dict[str, Any]:
    """Move all counters into hourly rows. Idempotent; safe to run twice at once; finishes the
    work of a flush that died halfway."""
    client = get_redis()
    shipped = ship()
    if client is None:
        return {"mode": "database", "requests": shipped["shipped"], "waiting": shipped["pending"]}
    try:
        tokens = transport.hand_over(client, uuid.uuid4().hex)
    except redis.RedisError as exc:
        logger.warning("usage flush: Redis unavailable (%s); will retry", type(exc).__name__)
        return {"mode": "redis", "error": type(exc).__name__}
    written = already = 0
    for each in tokens:
        got = transport.read_handed_over(client, each)
        requests = rows.write_counts(each, got.counts, got.last_used, got.callers) if got else 0
        transport.forget(client, each)
        if requests is None:
            already += 1
        else:
            written += requests
    return {"mode": "redis", "requests": written, "hand_overs": len(tokens), "already": already}
