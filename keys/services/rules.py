"""What a change must pass besides the model's own field rules: may this person do it (their
Django permissions), may they grant these scopes (the privilege ceiling), is the owner someone
who can answer for the key, does the organisation's key policy allow it (the policy's own
methods word each rule; here is when each applies).

Each check takes the acting ``user`` (None: the system operator, e.g. the CLI without ``--as``
or a background job, which is not capped) and returns refusals as ``{field: [message]}``, so
the admin's forms put them on the right field (``clean()``) and the services raise them: one
rule, asked by both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..models import APIKey, KeyPolicy
from ..scopes import Scopes, beyond, describe, held_by
from .errors import KeyPermissionError, KeyValidationError

Errors = dict[str, list[str]]

# What each service needs of a person (the Django permissions the admin checks too).
PERMISSIONS = {
    "generate": ("keys.add_apikey", "generate API keys"),
    "edit": ("keys.change_apikey", "edit API keys"),
    "rotate": ("keys.rotate_apikey", "rotate API keys"),
    "revoke": ("keys.revoke_apikey", "revoke API keys"),
    "policy": ("keys.change_keypolicy", "change the key policy"),
}


def require(user: Any, what: str) -> None:
    """Raise KeyPermissionError unless ``user`` (when there is one) may do ``what``."""
    if user is None:
        return
    perm, doing = PERMISSIONS[what]
    if not user.is_active:
        raise KeyPermissionError(f"{user.get_username()} is deactivated and may not {doing}.")
    if not user.has_perm(perm):
        raise KeyPermissionError(
            f"{user.get_username()} may not {doing} (needs the {perm} permission)."
        )


def ceiling_message(user: Any, missing: Mapping[str, list[str]]) -> str:
    return (
        "A person can grant a key only the permissions they hold themselves; "
        f"{user.get_username()} does not hold {describe(missing)}."
    )


def lacking(
    user: Any, scopes: Mapping[str, Any], *, already: Mapping[str, Any] | None = None
) -> Scopes:
    """The scopes of ``scopes`` (beyond those the key ``already`` has: removing is always
    allowed, keeping is not granting) that ``user`` does not hold."""
    if user is None:
        return {}
    added = beyond(scopes, already or {})
    return beyond(added, held_by(user)) if added else {}


def ceiling_errors(
    user: Any, scopes: Mapping[str, Any], *, already: Mapping[str, Any] | None = None
) -> Errors:
    missing = lacking(user, scopes, already=already)
    return {"scopes": [ceiling_message(user, missing)]} if missing else {}


def rotation_ceiling_refusal(user: Any, key: APIKey) -> str | None:
    """Rotation mints a credential with the key's permissions: the rotate page says so before
    the person tries (``key_rotate`` enforces it)."""
    missing = lacking(user, key.scopes)
    return ceiling_message(user, missing) if missing else None


def owner_errors(owner: Any) -> Errors:
    if owner is not None and not owner.is_active:
        return {
            "owner": [
                f"{owner.get_username()} is deactivated; a key's owner must be an active user."
            ]
        }
    return {}


def new_key_policy_errors(policy: KeyPolicy, key: APIKey, now: Any = None) -> Errors:
    """A new key (generated or minted by rotation) must meet the whole policy."""
    errors: Errors = {}
    for field, refusal in (
        ("expiry_policy", policy.lifetime_refusal(key.expires_at, now)),
        ("description", policy.description_refusal(key.description)),
        ("allowed_ips", policy.ip_allowlist_refusal(key.scopes, key.allowed_ips)),
    ):
        if refusal:
            errors[field] = [refusal]
    return errors


def edit_policy_errors(policy: KeyPolicy, key: APIKey, before: Mapping[str, Any]) -> Errors:
    """An edit (``before``: the old values of the changed fields) may not make a key break the
    policy: clear its description, add an action that needs an IP allowlist without one, or
    clear the allowlist of a key that needs it. A key that broke a policy made stricter after
    it was generated can still be edited in every other way."""
    errors: Errors = {}
    if "description" in before and (refusal := policy.description_refusal(key.description)):
        errors["description"] = [refusal]
    added = beyond(key.scopes, before.get("scopes", key.scopes))
    cleared = "allowed_ips" in before and not key.allowed_ips.strip()
    checked = key.scopes if cleared else added
    if refusal := policy.ip_allowlist_refusal(checked, key.allowed_ips):
        errors["allowed_ips"] = [refusal]
    return errors


def raise_if(errors: Errors) -> None:
    if errors:
        raise KeyValidationError(
            " ".join(m for messages in errors.values() for m in messages), errors
        )
