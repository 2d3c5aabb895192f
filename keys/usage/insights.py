"""Who is calling with a key, read for the key page, ``apikey show`` and the alerts: its clients,
its recent errors, which of its permissions it uses, and during a rotation which clients have
moved to the new key.

Every figure is the tables (as of the last flush) plus, where asked, what has reached Redis but
not yet been flushed (``transport.pending_of_key``: one HSCAN), like ``stats.key_usage``.

Unused permissions: each API endpoint needs one ``module:action`` (``permissions
.endpoint_scopes``); a granted permission is *used* when the hourly rows of the last
``UNUSED_SCOPE_DAYS`` (capped by the usage retention) hold a request to an endpoint that needs
it. A rotated key is one integration with the keys it replaced, so their rows count too, and the
window is judged from the oldest of them: a key is "old enough to judge" once that one is older
than the window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from crm.modules import ACTIONS, MODULES

from ..api.permissions import endpoint_scopes
from ..conf import key_settings
from ..models import APIKey, KeyClient, RecentError, UsageHour
from ..scopes import normalize
from .transport import Shipment, pending_of_key

MAX_LINEAGE = 20  # rotations followed back from a key (a chain is one integration)


def pending(key: APIKey, include_unflushed: bool = True) -> Shipment:
    """What the key has in Redis and not yet in the tables (empty without Redis)."""
    if include_unflushed and getattr(settings, "REDIS_URL", ""):
        return pending_of_key(key.pk)
    return Shipment()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


# --- clients ---------------------------------------------------------------------------------


def key_clients(key: APIKey, shipment: Shipment | None = None) -> list[dict[str, Any]]:
    """The key's clients, most recently seen first (at most ``CLIENTS_PER_KEY``):
    ``{ip, user_agent, requests, first_seen, last_seen}`` (ISO times). One query."""
    merged: dict[tuple[str, str], list[Any]] = {}
    for row in KeyClient.objects.filter(key=key).values_list(
        "ip", "user_agent", "requests", "first_seen", "last_seen"
    ):
        merged[(row[0], row[1])] = [row[2], row[3], row[4]]
    for (key_id, ip, agent), (requests, first, last) in (
        shipment.callers.clients.items() if shipment else ()
    ):
        if key_id != key.pk:
            continue
        mine = merged.get((ip, agent))
        if mine is None:
            merged[(ip, agent)] = [int(requests), _at(first), _at(last)]
        else:
            mine[0] += int(requests)
            mine[1] = min(mine[1], _at(first))
            mine[2] = max(mine[2], _at(last))
    ordered = sorted(merged.items(), key=lambda item: (item[1][2], item[0]), reverse=True)
    return [
        {
            "ip": ip,
            "user_agent": agent,
            "requests": requests,
            "first_seen": _iso(first),
            "last_seen": _iso(last),
        }
        for (ip, agent), (requests, first, last) in ordered[: int(key_settings.CLIENTS_PER_KEY)]
    ]


# --- recent errors ---------------------------------------------------------------------------


def key_recent_errors(key: APIKey, shipment: Shipment | None = None) -> list[dict[str, Any]]:
    """The key's latest errors, newest first (at most ``RECENT_ERRORS_PER_KEY``):
    ``{at, method, endpoint, status, detail, ip, user_agent}``. One query."""
    limit = int(key_settings.RECENT_ERRORS_PER_KEY)
    events = [
        (at, method, endpoint, status, detail, ip, agent)
        for at, method, endpoint, status, detail, ip, agent in RecentError.objects.filter(key=key)
        .order_by("-at", "-pk")
        .values_list("at", "method", "endpoint", "status", "detail", "ip", "user_agent")[:limit]
    ]
    if shipment:
        events += [(_at(e[0]), *e[1:]) for e in shipment.callers.errors.get(key.pk, [])]
    events.sort(key=lambda e: e[0], reverse=True)
    names = ("at", "method", "endpoint", "status", "detail", "ip", "user_agent")
    return [
        {**dict(zip(names, event, strict=True)), "at": _iso(event[0])} for event in events[:limit]
    ]


# --- unused permissions ----------------------------------------------------------------------


def unused_scope_days() -> int:
    return min(int(key_settings.UNUSED_SCOPE_DAYS), int(key_settings.USAGE_RETENTION_DAYS))


def granted(scopes: Mapping[str, Iterable[str]]) -> list[str]:
    """``{"contacts": ["view"]}`` -> ``["contacts:view"]``, in module and action order."""
    return [
        f"{module}:{action}"
        for module in MODULES
        for action in ACTIONS
        if action in scopes.get(module, ())
    ]


def without(scopes: Mapping[str, Iterable[str]], dropped: Iterable[str]) -> dict[str, list[str]]:
    """The scopes minus ``dropped`` (``module:action`` strings), in module and action order;
    modules left empty go."""
    gone = set(dropped)
    return normalize(
        {m: [a for a in actions if f"{m}:{a}" not in gone] for m, actions in scopes.items()}
    )


@dataclass(frozen=True)
class ScopeReview:
    """Which granted permissions requests used within the window, and whether the key (with the
    keys it replaced) is old enough for "unused" to mean something."""

    granted: list[str]
    used: list[str]
    unused: list[str]
    days: int
    since: datetime
    judged_from: datetime  # creation of the oldest key of the lineage
    old_enough: bool = field(default=False)
    keys: int = 1  # the key and the keys it replaced by rotation

    def removal_refusal(self) -> str | None:
        """Why the unused permissions may not be removed now, or None."""
        if not self.old_enough:
            return (
                f"This key was created on {self.judged_from:%Y-%m-%d}: permissions can be judged "
                f"unused once it is older than {self.days} days."
            )
        if not self.unused:
            return f"Every permission of this key was used in the last {self.days} days."
        if len(self.unused) == len(self.granted):
            return (
                f"No permission of this key was used in the last {self.days} days; a key needs "
                "at least one. If the integration is gone, revoke the key instead."
            )
        return None

    def pruned(
        self, scopes: Mapping[str, Iterable[str]], only: Iterable[str] | None = None
    ) -> dict[str, list[str]]:
        """``scopes`` without the unused permissions (only those of ``only`` when given: what
        an admin confirmed), for ``services.key_update``."""
        keep_if = set(only) if only is not None else None
        return without(scopes, [s for s in self.unused if keep_if is None or s in keep_if])


def _review(
    scopes: Mapping[str, Iterable[str]],
    used: set[str],
    oldest: datetime,
    now: datetime,
    keys: int = 1,
) -> ScopeReview:
    days = unused_scope_days()
    mine = granted(scopes)
    return ScopeReview(
        granted=mine,
        used=[s for s in mine if s in used],
        unused=[s for s in mine if s not in used],
        days=days,
        since=now - timedelta(days=days),
        judged_from=oldest,
        old_enough=oldest < now - timedelta(days=days),
        keys=keys,
    )


def _scopes_of(endpoints: Iterable[str]) -> set[str]:
    needs = endpoint_scopes()
    return {needs[e] for e in endpoints if e in needs}


def lineage(key: APIKey) -> list[tuple[int, datetime]]:
    """(id, created_at) of the key and of the keys it replaced by rotation, newest first: one
    query per rotation followed back."""
    chain = [(key.pk, key.created_at)]
    while len(chain) < MAX_LINEAGE:
        older = APIKey.objects.filter(replaced_by_id=chain[-1][0]).values_list("pk", "created_at")
        row = older.first()
        if row is None:
            break
        chain.append(row)
    return chain


def scope_review(
    key: APIKey,
    *,
    now: datetime | None = None,
    shipment: Shipment | None = None,
    include_unflushed: bool = True,
) -> ScopeReview:
    """The key's permission review (one query for its usage, one per rotation behind it)."""
    now = now or timezone.now()
    chain = lineage(key)
    since = now - timedelta(days=unused_scope_days())
    endpoints = set(
        UsageHour.objects.filter(
            key_id__in=[pk for pk, _ in chain], hour__gte=since.replace(minute=0, second=0)
        )
        .values_list("endpoint", flat=True)
        .distinct()
    )
    if shipment is None:
        shipment = pending(key, include_unflushed)
    endpoints |= {e for (k, _, e) in shipment.counts if k == key.pk}
    oldest = min(created for _, created in chain)
    return _review(key.scopes, _scopes_of(endpoints), oldest, now, len(chain))


def scope_reviews(keys: list[APIKey], now: datetime) -> dict[int, ScopeReview]:
    """Reviews of many keys from the tables (the daily alert): two queries whatever the count."""
    replaced = dict(
        APIKey.objects.filter(replaced_by__isnull=False).values_list("replaced_by_id", "pk")
    )
    created = dict(APIKey.objects.filter(replaced_by__isnull=False).values_list("pk", "created_at"))
    since = now - timedelta(days=unused_scope_days())
    used: dict[int, set[str]] = {}
    for key_id, endpoint in (
        UsageHour.objects.filter(hour__gte=since.replace(minute=0, second=0))
        .values_list("key_id", "endpoint")
        .distinct()
    ):
        used.setdefault(key_id, set()).add(endpoint)
    reviews = {}
    for key in keys:
        endpoints, oldest, current = set(used.get(key.pk, ())), key.created_at, key.pk
        chain = 1
        while chain < MAX_LINEAGE and (current := replaced.get(current)) is not None:
            endpoints |= used.get(current, set())
            oldest = min(oldest, created[current])
            chain += 1
        reviews[key.pk] = _review(key.scopes, _scopes_of(endpoints), oldest, now, chain)
    return reviews


# --- the rotation cutover --------------------------------------------------------------------


def cutover(key: APIKey, now: datetime | None = None) -> dict[str, Any] | None:
    """During a rotation's grace period (asked on the old key's page or the new one's): the old
    and new key, when the old one was last used, and every client seen on either since the
    rotation, with its last call on each and whether it has moved. None outside a grace period."""
    now = now or timezone.now()
    old = key if key.in_grace_at(now) else APIKey.objects.filter(replaced_by=key).first()
    if old is None or not old.in_grace_at(now) or old.replaced_by_id is None:
        return None
    new = old.replaced_by
    rotated_at = new.created_at
    old_pending, new_pending = pending(old), pending(new)
    clients: dict[tuple[str, str], dict[str, Any]] = {}
    for side, which, shipment in (("old", old, old_pending), ("new", new, new_pending)):
        for client in key_clients(which, shipment):
            last = datetime.fromisoformat(client["last_seen"])
            if last < rotated_at:
                continue  # not seen since the rotation: not part of the cutover
            row = clients.setdefault(
                (client["ip"], client["user_agent"]),
                {"ip": client["ip"], "user_agent": client["user_agent"], "old": None, "new": None},
            )
            row[side] = last
    for row in clients.values():
        row["moved"] = row["new"] is not None and (row["old"] is None or row["new"] >= row["old"])
    rows = sorted(clients.values(), key=lambda r: (r["moved"], -(r["old"] or r["new"]).timestamp()))
    last_used = old.last_used_at
    if old.pk in old_pending.last_used:
        seen = _at(old_pending.last_used[old.pk])
        last_used = seen if last_used is None or seen > last_used else last_used
    return {
        "old": old,
        "new": new,
        "grace_ends_at": old.grace_ends_at,
        "old_last_used": last_used,
        "old_used_since_rotation": last_used is not None and last_used >= rotated_at,
        "clients": rows,
        "still_on_old": [r for r in rows if not r["moved"]],
    }
