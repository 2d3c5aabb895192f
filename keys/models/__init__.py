"""The models of the ``keys`` app (app label ``keys``): keys, usage rows, alerts, the e-mail
outbox, the key policy."""

from .alerts import Alert, AlertKind, AlertRecipient
from .keys import (
    EDITABLE_FIELDS,
    SECRET_DERIVED_FIELDS,
    APIKey,
    APIKeyQuerySet,
    ExpiryPolicy,
    KeyStatus,
)
from .outbox import OutboxEmail
from .policy import KeyPolicy
from .usage import (
    KeyClient,
    PrunedUsage,
    RecentError,
    UnknownKeyUsageHour,
    UsageFlush,
    UsageHour,
)

__all__ = [
    "EDITABLE_FIELDS",
    "SECRET_DERIVED_FIELDS",
    "APIKey",
    "APIKeyQuerySet",
    "Alert",
    "AlertKind",
    "AlertRecipient",
    "ExpiryPolicy",
    "KeyClient",
    "KeyPolicy",
    "KeyStatus",
    "OutboxEmail",
    "PrunedUsage",
    "RecentError",
    "UnknownKeyUsageHour",
    "UsageFlush",
    "UsageHour",
]
