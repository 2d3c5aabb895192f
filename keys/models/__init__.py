"""The models of the ``keys`` app (app label ``keys``): keys, usage rows, alerts, the e-mail outbox."""

from .alerts import Alert, AlertKind
from .keys import EDITABLE_FIELDS, APIKey, APIKeyQuerySet, ExpiryPolicy, KeyStatus
from .outbox import OutboxEmail
from .usage import PrunedUsage, UnknownKeyUsageHour, UsageFlush, UsageHour

__all__ = [
    "EDITABLE_FIELDS",
    "APIKey",
    "APIKeyQuerySet",
    "Alert",
    "AlertKind",
    "ExpiryPolicy",
    "KeyStatus",
    "OutboxEmail",
    "PrunedUsage",
    "UnknownKeyUsageHour",
    "UsageFlush",
    "UsageHour",
]
