"""Changing the organisation's key policy (audited like every key change)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction
from audit.services import audit_record

from ..models import KeyPolicy
from . import rules
from .errors import KeyValidationError

POLICY_FIELDS = (
    "max_lifetime_days",
    "require_description",
    "default_expiry",
    "ip_allowlist_actions",
    "rotation_days",
)


@transaction.atomic
def policy_update(*, data: Mapping[str, Any], actor: Actor) -> KeyPolicy:
    """Change the key policy (``data``: any of POLICY_FIELDS), validated by the model's rules,
    with one "key policy changed" audit entry (before/after) in the same transaction. A person
    needs ``keys.change_keypolicy``. The policy applies to keys generated, edited or rotated
    from now on; existing keys that break it are listed (``selectors.policy_breaches``), never
    changed."""
    unknown = set(data) - set(POLICY_FIELDS)
    if unknown:
        raise KeyValidationError(f"Not a policy field: {', '.join(sorted(unknown))}.")
    rules.require(actor.user, "policy")
    policy, _ = KeyPolicy.objects.select_for_update().get_or_create(pk=KeyPolicy.SINGLETON_PK)
    before = {f: getattr(policy, f) for f in data}
    for field, value in data.items():
        setattr(policy, field, value)
    try:
        policy.full_clean()
    except ValidationError as exc:
        raise KeyValidationError.from_validation_error(exc) from exc
    changed = [f for f in data if getattr(policy, f) != before[f]]
    if not changed:
        return policy
    policy.updated_at = timezone.now()
    policy.updated_by_label = actor.label[:150]
    policy.save(update_fields=[*changed, "updated_at", "updated_by_label"])
    audit_record(
        action=AuditAction.POLICY_CHANGED,
        actor=actor,
        before={f: before[f] for f in changed},
        after={f: getattr(policy, f) for f in changed},
        message="Key policy: " + "; ".join(f"{label} {value}" for label, value in policy.summary()),
    )
    return policy
