"""The API_KEYS settings: every default in one place, read through one object.

``settings.API_KEYS`` (a dict in ``crm_keys/settings.py``, filled from the environment) overrides
any of ``DEFAULTS``; ``key_settings.NAME`` gives the value. This module is the only reader of
``settings.API_KEYS``: the rest of the app imports ``key_settings``. The merged values are cached
(the request path reads several of them per request) and rebuilt when a test changes the
setting (``setting_changed``), like django-rest-knox's ``knox/settings.py``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS: dict[str, Any] = {
    # HMAC-SHA256 pepper of key hashes (API_KEY_PEPPER). Empty: SECRET_KEY serves, and
    # `check --deploy` warns (rotating the secret key would then invalidate every key).
    "PEPPER": "",
    # Where alert and reminder e-mails go, and who sends them ("": DEFAULT_FROM_EMAIL).
    # (Admin > Alert recipients, when any are stored there, replace ALERT_RECIPIENTS.)
    "ALERT_RECIPIENTS": [],
    "ALERT_FROM": "",
    # The e-mail outbox: how long a sender holds a message it is sending before another run may
    # send it again (longer than any one SMTP conversation under EMAIL_TIMEOUT), and how long
    # sent messages are kept.
    "OUTBOX_CLAIM_SECONDS": 300,
    "OUTBOX_RETENTION_DAYS": 30,
    # Where the app is served (https://crm.example.com): e-mails link to the admin from it.
    "SITE_URL": "",
    # Alert defaults, overridable per key (blank = this default).
    "ALERT_VOLUME_PER_HOUR": 10_000,
    "ALERT_ERROR_RATE_PERCENT": 10.0,
    "ALERT_ERROR_MIN_REQUESTS": 20,
    "ALERT_UNUSED_DAYS": 30,
    "ROTATION_REMINDER_DAYS": 90,
    "EXPIRY_REMINDER_DAYS": 7,
    # Hourly usage rows older than this are pruned daily.
    "USAGE_RETENTION_DAYS": 90,
    # Seconds between ships of a process's usage counts (0: only flush() ships).
    "USAGE_SHIP_INTERVAL": 1.0,
    # Bound of the in-process usage buffer, in (key, hour, endpoint) cells.
    "USAGE_BUFFER_MAX_CELLS": 100_000,
    # How long usage counters live in Redis if no flush collects them (seconds).
    "USAGE_REDIS_TTL": 7 * 86400,
    # Who calls with a key: the most recent distinct clients (address + User-Agent) and the
    # most recent errors kept per key (both pruned with USAGE_RETENTION_DAYS).
    "CLIENTS_PER_KEY": 50,
    "RECENT_ERRORS_PER_KEY": 50,
    # A granted permission no request used within this many days is "unused" (capped by
    # USAGE_RETENTION_DAYS: older hourly rows are gone).
    "UNUSED_SCOPE_DAYS": 30,
    # In-process cache of key records on the request path, and the backstop age of an entry.
    "LOOKUP_CACHE": True,
    "LOOKUP_CACHE_SECONDS": 30,
    # The file every process of this machine watches for key changes ("": <var dir>/key-changes).
    "CHANGES_FILE": "",
    # Failed authentications per client IP per minute before that IP gets 429.
    "AUTH_FAILURES_PER_MINUTE": 30,
    # Without Redis: the SQLite file through which this machine's processes share rate-limit
    # and failure counters ("": <var dir>/rate-limits.sqlite3).
    "COUNTERS_FILE": "",
}


class KeySettings:
    """``key_settings.ALERT_UNUSED_DAYS``: the project's value, else the default."""

    def __init__(self) -> None:
        self._merged: dict[str, Any] | None = None

    def _values(self) -> dict[str, Any]:
        if self._merged is None:
            user = getattr(settings, "API_KEYS", {}) or {}
            unknown = set(user) - set(DEFAULTS)
            if unknown:
                raise ImproperlyConfigured(
                    f"Unknown API_KEYS setting(s): {', '.join(sorted(unknown))}. "
                    f"Known: {', '.join(DEFAULTS)}."
                )
            self._merged = {**DEFAULTS, **user}
        return self._merged

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(f"No API_KEYS setting {name!r}")
        return self._values()[name]

    def reload(self) -> None:
        self._merged = None


key_settings = KeySettings()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "API_KEYS":
        key_settings.reload()
