"""Admin > API Keys and Alerts.

``keys`` (the key list and key page), ``views`` (Generate, show-once, Rotate, Revoke, usage CSV),
``forms`` and ``widgets`` (the permission matrix), ``filters``, ``display``, ``alerts``,
``policy`` and ``people`` (Users and Groups: the permission picker).
"""

from . import alerts, keys, people, policy  # noqa: F401 - registers the ModelAdmins
