"""What a change must pass besides the model's own field rules: may this person do it (their
Django permissions), may they grant these scopes (the privilege ceiling), is the owner someone
who can answer for the key.

Each check takes the acting ``user`` (None: the system operator, e.g. the CLI without ``--as``
or a background job, which is not capped) and returns refusals as ``{field: [message]}``, so
the admin's forms put them on the right field (``clean()``) and the services raise them: one
rule, asked by both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..scopes import Scopes, beyond, describe, held_by
from .errors import KeyPermissionError, KeyValidationError

Errors = dict[str, list[str]]

# What each service needs of a person (the Django permissions the admin checks too).
PERMISSIONS = {
    "generate": ("keys.add_apikey", "generate API keys"),
    "edit": ("keys.change_apikey", "edit API keys"),
    "rotate": ("keys.rotate_apikey", "rotate API keys"),
    "revoke": ("keys.revoke_apikey", "revoke API keys"),
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


def owner_errors(owner: Any) -> Errors:
    if owner is not None and not owner.is_active:
        return {
            "owner": [
                f"{owner.get_username()} is deactivated; a key's owner must be an active user."
            ]
        }
    return {}


def raise_if(errors: Errors) -> None:
    if errors:
        raise KeyValidationError(
            " ".join(m for messages in errors.values() for m in messages), errors
        )
