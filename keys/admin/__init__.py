"""Admin > API Keys, Admin > Alerts and Admin > Key policy.

``keys`` (the key list and key page), ``views`` (Generate, show-once, Rotate, Revoke, usage CSV),
``forms`` and ``widgets`` (the permission matrix), ``filters``, ``display``, ``alerts`` and
``policy``.
"""

from . import alerts, keys, policy  # noqa: F401 - registers the ModelAdmins
