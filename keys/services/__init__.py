"""Every change of an API key (and of the organisation's key policy).

Each function is keyword-only, takes the ``actor`` who acts, runs in one transaction, locks the
row it changes and writes its audit entry in that same transaction. The admin, the API, the
CLI and the Celery tasks call these; nothing else saves a key.

``lifecycle`` (generate, edit, rotate, revoke), ``policy`` (the organisation's key policy),
``rules`` (who may do what, the privilege ceiling, when the policy applies), ``batches`` (the
background jobs' batches), ``errors`` (what a refusal raises).
"""

from .batches import (
    GRACE_ENDED_LABEL,
    GRACE_ENDED_REASON,
    keys_mark_expiry_reminded,
    keys_record_expiries,
    keys_revoke_grace_ended,
)
from .errors import KeyPermissionError, KeyServiceError, KeyStateError, KeyValidationError
from .lifecycle import (
    GRACE_CHOICES,
    GRACE_MESSAGE,
    MAX_GRACE,
    Generated,
    Rotated,
    key_generate,
    key_revoke,
    key_rotate,
    key_update,
    key_update_scopes,
    snapshot,
)
from .policy import POLICY_FIELDS, policy_update

__all__ = [
    "GRACE_CHOICES",
    "GRACE_ENDED_LABEL",
    "GRACE_ENDED_REASON",
    "GRACE_MESSAGE",
    "MAX_GRACE",
    "POLICY_FIELDS",
    "Generated",
    "KeyPermissionError",
    "KeyServiceError",
    "KeyStateError",
    "KeyValidationError",
    "Rotated",
    "key_generate",
    "key_revoke",
    "key_rotate",
    "key_update",
    "key_update_scopes",
    "keys_mark_expiry_reminded",
    "keys_record_expiries",
    "keys_revoke_grace_ended",
    "policy_update",
    "snapshot",
]
