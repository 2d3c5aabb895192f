"""A key's life: generate, edit, rotate, revoke (see the package docstring for the rules every
service follows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.actors import Actor
from audit.models import AuditAction
from audit.services import audit_record

from .. import crypto
from ..api.lookup import key_changed
from ..models import EDITABLE_FIELDS, APIKey, ExpiryPolicy, KeyPolicy
from ..models.keys import POLICY_DAYS, expiry_for
from ..scopes import beyond, describe
from . import rules
from .errors import KeyStateError, KeyValidationError


@dataclass(frozen=True)
class Generated:
    key: APIKey
    full_key: str  # shown once, never stored

    def __repr__(self) -> str:
        return f"Generated(key={self.key!r})"


def _full_clean(key: APIKey, fields: Any = None) -> None:
    """Validate (and normalise) ``key`` with the rules on its model fields, the same rules the
    admin's forms apply; only ``fields`` when given. Relations are not re-checked (that would
    cost a query each; they come from the database or the request's user)."""
    wanted = set(fields) if fields is not None else {f.name for f in APIKey._meta.fields}
    exclude = [f.name for f in APIKey._meta.fields if f.is_relation or f.name not in wanted]
    try:
        key.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        raise KeyValidationError.from_validation_error(exc) from exc


def _expiry(policy: str, custom_date: date | None, **kwargs: Any) -> datetime | None:
    try:
        return expiry_for(policy, custom_date, **kwargs)
    except ValidationError as exc:
        raise KeyValidationError.from_validation_error(exc) from exc


def _recorded(field: str, value: Any) -> Any:
    """A field's value as an audit entry records it (a person by username)."""
    if field == "owner":
        return value.get_username() if value is not None else None
    return value


def snapshot(key: APIKey) -> dict[str, Any]:
    """What an audit entry records of a key (never its secret: there is none to record)."""
    return {
        "name": key.name,
        "description": key.description,
        "owner": _recorded("owner", key.owner),
        "scopes": key.scopes,
        "expiry_policy": key.expiry_policy,
        "expires_at": key.expires_at,
    }


def _validated_new_key(**fields: Any) -> APIKey:
    key = APIKey(**fields)
    _full_clean(key, fields=fields)
    return key


def _insert_new_key(key: APIKey) -> tuple[APIKey, str]:
    """Insert a validated key with a fresh public id, retrying on the (astronomically rare)
    collision."""
    for _ in range(5):
        new = crypto.make_key()
        key.public_id, key.key_hash = new.public_id, crypto.hash_key(new.full)
        try:
            with transaction.atomic():
                key.save(force_insert=True)
            return key, new.full
        except IntegrityError:
            continue
    raise RuntimeError("Could not allocate a unique public id")


@transaction.atomic
def key_generate(
    *,
    name: str,
    scopes: Mapping[str, Any],
    actor: Actor,
    description: str = "",
    expiry_policy: str | None = None,
    expiry_date: date | None = None,
    owner: Any = None,
    allowed_ips: str = "",
) -> Generated:
    """Create a key. Only its HMAC is stored; the full key is returned once, to be shown once.

    A person (``actor.user``) needs the permission to generate keys and can grant only the
    permissions they hold themselves (the privilege ceiling: a key never exceeds the person
    who made it); the system operator (no user) is not capped. The owner defaults to that
    person. Everyone, the system operator included, is held to the organisation's key policy
    (maximum lifetime, description, IP allowlist); ``expiry_policy`` defaults to its default
    expiry."""
    rules.require(actor.user, "generate")
    policy = KeyPolicy.current()
    expiry_policy = expiry_policy or policy.default_expiry
    owner = owner if owner is not None else actor.user
    key = _validated_new_key(
        name=name,
        description=description,
        scopes=dict(scopes),
        expiry_policy=ExpiryPolicy(expiry_policy),
        expires_at=_expiry(expiry_policy, expiry_date),
        allowed_ips=allowed_ips,
        created_by=actor.user,
        created_by_label=actor.label[:150],
        owner=owner,
        granted_by=actor.user,
        granted_by_label=actor.label[:150],
    )
    rules.raise_if(
        {
            **rules.ceiling_errors(actor.user, key.scopes),
            **rules.owner_errors(owner),
            **rules.new_key_policy_errors(policy, key),
        }
    )
    key, full = _insert_new_key(key)
    key_changed(key.public_id, urgent=False, what="new key")  # an id remembered as unknown
    audit_record(
        action=AuditAction.GENERATED,
        actor=actor,
        key=key,
        after=snapshot(key),
        message=f"Permissions: {describe(key.scopes)}",
    )
    return Generated(key=key, full_key=full)


def _lock(key: APIKey | int) -> APIKey:
    pk = key.pk if isinstance(key, APIKey) else key
    return APIKey.objects.select_for_update().get(pk=pk)


@transaction.atomic
def key_update(*, key: APIKey | int, data: Mapping[str, Any], actor: Actor) -> APIKey:
    """Edit a key's details, permissions and settings (``data``: any of EDITABLE_FIELDS). Takes
    effect on the very next request. The values are validated by the model's own rules. A
    scope change gets its own "scopes changed" audit entry with before/after; other changes one
    "edited" entry. A key that may not be edited (revoked) is refused.

    Permissions the key did not have are granted by the actor, who must hold them (removing
    one is always allowed); the actor then becomes the key's ``granted_by``. A new owner must
    be an active user."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise KeyValidationError(f"Not an editable field: {', '.join(sorted(unknown))}.")
    rules.require(actor.user, "edit")
    obj = _lock(key)
    refusal = obj.edit_refusal()
    if refusal:
        raise KeyStateError(refusal)
    before = {f: getattr(obj, f) for f in data}
    for f, v in data.items():
        setattr(obj, f, v)
    _full_clean(obj, fields=data)
    changed = [f for f in data if getattr(obj, f) != before[f]]
    if not changed:
        return obj
    errors: rules.Errors = {}
    if "scopes" in changed:
        errors.update(rules.ceiling_errors(actor.user, obj.scopes, already=before["scopes"]))
    if "owner" in changed:
        errors.update(rules.owner_errors(obj.owner))
    errors.update(
        rules.edit_policy_errors(KeyPolicy.current(), obj, {f: before[f] for f in changed})
    )
    rules.raise_if(errors)
    updated = list(changed)
    if "scopes" in changed and beyond(obj.scopes, before["scopes"]):
        obj.granted_by, obj.granted_by_label = actor.user, actor.label[:150]
        updated += ["granted_by", "granted_by_label"]
    obj.save(update_fields=updated)
    key_changed(obj.public_id, what="change")
    if "scopes" in changed:
        audit_record(
            action=AuditAction.SCOPES_CHANGED,
            actor=actor,
            key=obj,
            before={"scopes": before["scopes"]},
            after={"scopes": obj.scopes},
            message=f"Now: {describe(obj.scopes)}",
        )
    edited = [f for f in changed if f != "scopes"]
    if edited:
        audit_record(
            action=AuditAction.EDITED,
            actor=actor,
            key=obj,
            before={f: _recorded(f, before[f]) for f in edited},
            after={f: _recorded(f, getattr(obj, f)) for f in edited},
        )
    return obj


@transaction.atomic
def key_update_scopes(*, key: APIKey | int, scopes: Mapping[str, Any], actor: Actor) -> APIKey:
    """Replace a key's permissions (see key_update)."""
    return key_update(key=key, data={"scopes": dict(scopes)}, actor=actor)


@transaction.atomic
def key_revoke(
    *, key: APIKey | int, actor: Actor, reason: str = "", leaked: bool = False
) -> APIKey:
    """Revoke a key: immediate and permanent; the next request with it gets 401.
    Revoking a revoked key is refused, so each revocation has exactly one audit entry.
    ``leaked``: found by its value (admin form, `apikey revoke --leaked`), recorded as such."""
    rules.require(actor.user, "revoke")
    if leaked:
        reason = "reported leaked" + (f" ({reason})" if reason else "")
    obj = _lock(key)
    now = timezone.now()
    refusal = obj.revocation_refusal(now)
    if refusal:
        raise KeyStateError(refusal)
    obj.revoked_at = now
    obj.revoked_by_label = actor.label[:150]
    obj.revoke_reason = reason[:200]
    obj.save(update_fields=["revoked_at", "revoked_by_label", "revoke_reason"])
    key_changed(obj.public_id, what="revocation")
    audit_record(
        action=AuditAction.REVOKED,
        actor=actor,
        key=obj,
        before={"status": "active"},
        after={"status": "revoked"},
        message=f"revoked: {reason}" if reason else "revoked",
    )
    return obj


GRACE_CHOICES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
MAX_GRACE = timedelta(days=30)
GRACE_MESSAGE = "The grace period must be more than 0 and at most 30 days."


@dataclass(frozen=True)
class Rotated:
    key: APIKey  # the new key
    old_key: APIKey  # the old key, now in its grace period
    full_key: str  # the new key's value, shown once

    def __repr__(self) -> str:
        return f"Rotated(key={self.key!r}, old_key={self.old_key!r})"


def _rotated_expiry(
    old: APIKey, policy: KeyPolicy, now: datetime
) -> tuple[str, datetime | None, str]:
    """The new key's expiry choice and time: the old key's choice from now (a custom date
    kept), within the policy's maximum lifetime (the longest standard choice it allows, else
    its last allowed day). The third value says what was capped ("" when nothing was)."""
    if old.expiry_policy == ExpiryPolicy.CUSTOM:
        choice, expires_at = ExpiryPolicy.CUSTOM, old.expires_at
    else:
        choice, expires_at = old.expiry_policy, _expiry(old.expiry_policy, None, now=now)
    if policy.lifetime_refusal(expires_at, now) is None:
        return choice, expires_at, ""
    allowed = [
        c
        for c in (ExpiryPolicy.YEAR_1, ExpiryPolicy.DAYS_90, ExpiryPolicy.DAYS_30)
        if policy.allows_choice(c)
    ]
    if allowed:
        return allowed[0], now + timedelta(days=POLICY_DAYS[allowed[0]]), allowed[0].label
    last = policy.last_expiry_date(now)
    return ExpiryPolicy.CUSTOM, _expiry(ExpiryPolicy.CUSTOM, last, now=now), f"{last:%Y-%m-%d}"


@transaction.atomic
def key_rotate(*, key: APIKey | int, grace: timedelta, actor: Actor) -> Rotated:
    """Issue a new key value with the same name, description, permissions and settings. The
    old key keeps working until ``now + grace`` (or its own expiry, if sooner) and is then
    refused (enforced on every request from its timestamps; the grace job records the
    revocation). The old row is locked, so two concurrent rotations of one key make exactly
    one new key; rotating a key that is revoked, expired or already replaced is refused.

    The new key is a new credential with the old key's permissions, granted by the actor, who
    must hold them all (the privilege ceiling); it keeps the old key's owner. As a new key it
    meets the key policy: its lifetime is capped at the maximum (the old key's expiry cannot
    be edited, so this is the way to bring it in line), and a key the policy wants with a
    description or an IP allowlist must be edited to have them first."""
    if grace <= timedelta(0) or grace > MAX_GRACE:
        raise KeyValidationError(GRACE_MESSAGE)
    rules.require(actor.user, "rotate")
    old = _lock(key)
    now = timezone.now()
    refusal = old.rotation_refusal(now)
    if refusal:
        raise KeyStateError(refusal)
    rules.raise_if(rules.ceiling_errors(actor.user, old.scopes))
    policy = KeyPolicy.current()
    expiry_policy, expires_at, capped = _rotated_expiry(old, policy, now)
    new = _validated_new_key(
        name=old.name,
        description=old.description,
        scopes=old.scopes,
        expiry_policy=expiry_policy,
        expires_at=expires_at,
        created_by=actor.user,
        created_by_label=actor.label[:150],
        owner_id=old.owner_id,
        granted_by=actor.user,
        granted_by_label=actor.label[:150],
        alert_volume_per_hour=old.alert_volume_per_hour,
        alert_error_rate_percent=old.alert_error_rate_percent,
        alert_unused_days=old.alert_unused_days,
        alerts_muted=old.alerts_muted,
        rate_limit_per_minute=old.rate_limit_per_minute,
        allowed_ips=old.allowed_ips,
        lineage_root_id=old.lineage_id,  # one rate limit for the old key and its replacement
    )
    errors = rules.new_key_policy_errors(policy, new, now)
    if errors:
        rules.raise_if(
            {f: [f"{m[0]} Edit the key first, then rotate it."] for f, m in errors.items()}
        )
    new, full = _insert_new_key(new)
    old.replaced_by = new
    # The old key never outlives its own expiry: a grace end past it would make the Sunset
    # header (and the "remains active until" message) promise time the key does not have.
    grace_ends_at = now + grace
    if old.expires_at is not None and old.expires_at < grace_ends_at:
        grace_ends_at = old.expires_at
    old.grace_ends_at = grace_ends_at
    old.save(update_fields=["replaced_by", "grace_ends_at"])
    key_changed(old.public_id, what="rotation")
    key_changed(new.public_id, urgent=False, what="new key")
    audit_record(
        action=AuditAction.ROTATED,
        actor=actor,
        key=old,
        after={"replaced_by": new.public_id, "grace_ends_at": old.grace_ends_at},
        message=(
            f"New key value {new.display_id}; the old key remains active for the grace "
            f"period, until {old.grace_ends_at:%Y-%m-%d %H:%M %Z}"
        ),
    )
    audit_record(
        action=AuditAction.GENERATED,
        actor=actor,
        key=new,
        after=snapshot(new),
        message=f"By rotation of {old.display_id}"
        + (f"; expiry capped by the key policy to {capped}" if capped else ""),
    )
    return Rotated(key=new, old_key=old, full_key=full)
