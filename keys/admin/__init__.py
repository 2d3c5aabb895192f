"""Admin > API Keys and Admin > Alerts.

``keys`` (the key list and key page), ``views`` (Generate, show-once, Rotate, Revoke, usage CSV),
``forms`` and ``widgets`` (the permission matrix), ``filters``, ``display`` and ``alerts``.
"""

from . import alerts, keys  # noqa: F401 - registers the ModelAdmins
