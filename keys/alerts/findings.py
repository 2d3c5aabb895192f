"""What an alert rule finds (``Finding``), and the findings of the two alerts about who calls
a key (``rules`` opens and clears their episodes like the others'):

- *Old key still in use* (every 5 minutes): a rotated key in the last hour or last tenth of its
  grace period, whichever is shorter, used within the last hour; the message names the clients
  that called it since the rotation (as of the last flush) and the replacement to give them.
- *Permissions unused* (daily): granted permissions no request needed within
  ``UNUSED_SCOPE_DAYS``, once the key (with the keys it replaced) is older than that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..models import APIKey, KeyClient
from ..usage.insights import ScopeReview

CUTOVER_FINAL = timedelta(hours=1)  # at most the last hour of a grace period
CUTOVER_RECENT = timedelta(hours=1)  # "used recently"


@dataclass(frozen=True)
class Finding:
    """A condition that holds now: what was measured against which threshold."""

    measured: float
    threshold: float
    message: str


def grace_ending(now: datetime) -> list[int]:
    """Ids of rotated keys whose grace ends within CUTOVER_FINAL (the ones to look at)."""
    return list(
        APIKey.objects.filter(
            revoked_at__isnull=True, grace_ends_at__gt=now, grace_ends_at__lte=now + CUTOVER_FINAL
        ).values_list("pk", flat=True)
    )


def old_key_in_use(key: APIKey, now: datetime) -> Finding | None:
    """``key`` needs ``replaced_by`` loaded (its creation is the rotation time)."""
    if key.replaced_by_id is None or not key.in_grace_at(now):
        return None
    rotated_at = key.replaced_by.created_at
    final = min(CUTOVER_FINAL, (key.grace_ends_at - rotated_at) / 10)
    if key.grace_ends_at - now > final or key.last_used_at is None:
        return None
    if key.last_used_at < max(now - CUTOVER_RECENT, rotated_at):
        return None
    recent = KeyClient.objects.filter(key=key, last_seen__gte=rotated_at).order_by("-last_seen")
    names = [f"{c.ip or 'unknown address'} ({c.user_agent or 'no User-Agent'})" for c in recent]
    who = "; ".join(names[:5]) + (f"; and {len(names) - 5} more" if len(names) > 5 else "")
    minutes = max(int((key.grace_ends_at - now).total_seconds() // 60), 0)
    return Finding(
        measured=len(names),
        threshold=final.total_seconds() / 60,
        message=(
            f"Old key still in use: its grace period ends and it is automatically revoked at "
            f"{key.grace_ends_at:%Y-%m-%d %H:%M} UTC (in {minutes} min); it was last used at {key.last_used_at:%H:%M} UTC, by "
            f"{who or 'unknown clients'}. Give them the new key "
            f"{key.replaced_by.display_id} now, or they get 401 Unauthorized at the cutover."
        )[:500],
    )


def unused_permissions(review: ScopeReview) -> Finding | None:
    if not review.old_enough or not review.unused:
        return None
    if len(review.unused) == len(review.granted):  # it only asked about itself (/api/v1/key/)
        advice = "No permission was used: if the integration is gone, revoke the key."
    else:
        advice = (
            "Remove them on the key page (Remove unused permissions) or with "
            "`apikey scopes <id> --drop-unused`."
        )
    return Finding(
        measured=len(review.unused),
        threshold=review.days,
        message=(
            f"Permissions unused for {review.days} days: {', '.join(review.unused)}. {advice}"
        )[:500],
    )
