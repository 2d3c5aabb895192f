"""IP-allowlist refusals: counted in memory on the request, written to the audit log off it.

A refused request only adds one to an in-process cell (key, address range, hour) under a
lock: no query, no write, no wait on the audit chain's lock (300 refusals used to be 300 audit
entries in a second, each taking that lock on the request thread). The usage shipper thread
calls ``write_pending`` every ``USAGE_SHIP_INTERVAL`` and at exit; it writes
- one entry when a (key, range) is first refused in an hour, with the count so far, and
- one more when that hour is over (or the process exits) with the requests refused since,
so a key gets at most two entries per address range per hour from each web process, each with
its count (``after``: ``refused``, ``range``, ``hour``, sample ``addresses``). A range is an
IPv4 /24 or an IPv6 /48; past ``MAX_RANGES_PER_KEY`` ranges in an hour the rest are counted
together as "other addresses".
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from audit.actors import Actor
from audit.models import AuditAction
from audit.services import audit_record

from ..models import APIKey

logger = logging.getLogger(__name__)

MAX_RANGES_PER_KEY = 10
MAX_CELLS = 10_000
SAMPLE_ADDRESSES = 3
OTHER = "other addresses"


@dataclass
class _Cell:
    key_id: int
    public_id: str
    name: str
    range: str
    hour: int
    unwritten: int = 0
    announced: bool = False
    addresses: list[str] = field(default_factory=list)
    user_agent: str = ""


_lock = threading.Lock()
_cells: dict[tuple[int, str, int], _Cell] = {}
_dropped = 0


def address_range(ip: str | None) -> str:
    if ip is None:
        return "unknown address"
    address = ipaddress.ip_address(ip)
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network((address, prefix), strict=False))


def record(key: APIKey, ip: str | None, user_agent: str) -> None:
    """Count one refusal (the request path: a dict update under a lock)."""
    global _dropped
    hour = int(time.time() // 3600)
    rng = address_range(ip)
    with _lock:
        cell = _cells.get((key.pk, rng, hour))
        if cell is None:
            ranges = sum(1 for (k, _, h) in _cells if k == key.pk and h == hour)
            if ranges >= MAX_RANGES_PER_KEY:
                rng = OTHER
                cell = _cells.get((key.pk, rng, hour))
        if cell is None:
            if len(_cells) >= MAX_CELLS:
                _dropped += 1
                return
            cell = _Cell(key.pk, key.public_id, key.name, rng, hour, user_agent=user_agent[:200])
            _cells[(key.pk, rng, hour)] = cell
        cell.unwritten += 1
        if ip and ip not in cell.addresses and len(cell.addresses) < SAMPLE_ADDRESSES:
            cell.addresses.append(ip)


def write_pending(*, final: bool = False) -> int:
    """Write what is due (see the module's docstring); ``final``: everything, as at exit.
    Runs off the request path. Returns the number of entries written."""
    global _dropped
    now_hour = int(time.time() // 3600)
    due: list[tuple[_Cell, int, bool]] = []
    with _lock:
        for cell_id, cell in list(_cells.items()):
            over = final or cell.hour < now_hour
            if cell.unwritten and (not cell.announced or over):
                due.append((cell, cell.unwritten, cell.announced))
                cell.unwritten, cell.announced = 0, True
            if over and not cell.unwritten:
                del _cells[cell_id]
        dropped, _dropped = _dropped, 0
    if dropped:
        logger.warning("IP allowlist: %s refusals not counted (too many distinct keys)", dropped)
    written = 0
    for cell, count, more in due:
        try:
            _write(cell, count, more=more)
            written += 1
        except Exception:  # the database is down: keep the count for the next run
            logger.exception("IP allowlist refusals could not be written to the audit log")
            with _lock:
                kept = _cells.setdefault((cell.key_id, cell.range, cell.hour), cell)
                kept.unwritten += count
    return written


def _write(cell: _Cell, count: int, *, more: bool) -> None:
    start = datetime.fromtimestamp(cell.hour * 3600, tz=UTC).strftime("%Y-%m-%d %H:00 UTC")
    requests = f"{count} request{'s' if count != 1 else ''}"
    message = (
        f"{'Further: ' if more else ''}{requests} from {cell.range} "
        f"({', '.join(cell.addresses) or 'no readable address'}) in the hour from {start} "
        "refused: not in the key's IP allowlist."
    )
    key = APIKey(pk=cell.key_id, public_id=cell.public_id, name=cell.name)
    audit_record(
        action=AuditAction.ACCESS_DENIED,
        actor=Actor(
            label=f"api-key:{cell.public_id}",
            ip=cell.addresses[0] if cell.addresses else None,
            user_agent=cell.user_agent,
        ),
        key=key,
        message=message,
        after={
            "refused": count,
            "range": cell.range,
            "hour": start,
            "addresses": list(cell.addresses),
        },
    )


def reset() -> None:
    """Forget every count (tests)."""
    global _dropped
    with _lock:
        _cells.clear()
        _dropped = 0
