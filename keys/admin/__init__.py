"""Admin > API Keys and Alerts.

``keys`` (the key list and key page), ``views`` (Generate, show-once, Rotate, Revoke, usage CSV),
``forms`` and ``widgets`` (the permission matrix), ``filters``, ``display``, ``alerts``,
``policy`` and ``people`` (Users and Groups: the permission picker); ``middleware`` keeps keys
out of admin URLs and shows a key change that could not reach every process as a warning.
"""

from . import alerts, keys, people, policy  # noqa: F401 - registers the ModelAdmins
