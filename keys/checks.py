"""Deployment checks (``manage.py check --deploy``).

The configuration traps of a production machine: an API key pepper that is really SECRET_KEY
(keys.W004), settings read from a development .env (keys.W005), and a Redis that forgets.

Redis holds usage counts between a process's ship (every second) and the next flush into the
database (every 10 s), and the broker's queued jobs. A Redis restart without persistence loses
them: the fault-injection run lost 18 % of 57,091 requests that way, and none with AOF. So
production Redis needs AOF with ``appendfsync everysec`` (a restart then loses at most about a
second of writes) or ``always``; this check says when the configured one has less.

E-mails (alerts, reminders) are written by jobs, which have no request to build an address
from: they link to the admin from ``SITE_URL``, and a check says when it is missing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

from .conf import key_settings

REQUIREMENT = (
    "Run Redis with `appendonly yes` and `appendfsync everysec` (or `always`); see the "
    "README, Operations."
)


def _where(url: str) -> str:
    parts = urlsplit(url)  # never the password
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


@register(Tags.database, deploy=True)
def redis_persistence(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    url = getattr(settings, "REDIS_URL", "")
    if not url:
        return []
    where = _where(url)
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        aof = bool(client.info("persistence").get("aof_enabled"))
        try:
            config: dict[str, str] | None = {
                **client.config_get("appendfsync"),
                **client.config_get("save"),
            }
        except redis.ResponseError:  # CONFIG is disabled on many managed services
            config = None
    except redis.RedisError as exc:
        return [
            Warning(
                f"Could not check the persistence of Redis at {where} ({type(exc).__name__}).",
                hint=REQUIREMENT,
                id="keys.W003",
            )
        ]
    fsync = config.get("appendfsync") if config is not None else None
    snapshots = bool((config.get("save") or "").strip()) if config is not None else None
    if aof and fsync != "no":
        return []
    if not aof and snapshots is False:
        return [
            Warning(
                f"Redis at {where} has no persistence (neither AOF nor "
                "RDB snapshots): a restart loses the usage counts not yet flushed into the "
                "database and the queued jobs.",
                hint=REQUIREMENT,
                id="keys.W001",
            )
        ]
    weaker = (
        "AOF with `appendfsync no` (the OS decides when to write)"
        if aof
        else "RDB snapshots only"
        if snapshots
        else "no AOF (and its snapshot settings could not be read)"
    )
    return [
        Warning(
            f"Redis at {where} has {weaker}: a restart loses the writes since the last "
            "sync, usage counts among them.",
            hint=REQUIREMENT,
            id="keys.W002",
        )
    ]


@register(Tags.security, deploy=True)
def check_pepper(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if key_settings.PEPPER:
        return []
    return [
        Warning(
            "API_KEY_PEPPER is not set: API key hashes are keyed with SECRET_KEY, so rotating "
            "SECRET_KEY would invalidate every API key at once.",
            hint="Set API_KEY_PEPPER to its own long random value (for existing keys: the "
            "current SECRET_KEY, then rotate SECRET_KEY freely). See SECURITY.md.",
            id="keys.W004",
        )
    ]


@register(Tags.security, deploy=True)
def check_dotenv(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if not getattr(settings, "DOTENV_READ", False):
        return []
    return [
        Warning(
            f"Settings were read from {settings.DOTENV_FILE} (CRM_KEYS_READ_DOTENV=1), the "
            "development file `make run` writes, which turns DEBUG on.",
            hint="In production set every variable in the environment and leave "
            "CRM_KEYS_READ_DOTENV unset.",
            id="keys.W005",
        )
    ]


@register(Tags.compatibility, deploy=True)
def check_site_url(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """`check --deploy`: e-mails link to the admin from SITE_URL (jobs have no request to
    build an address from)."""
    url = key_settings.SITE_URL
    if not url:
        return [
            Warning(
                "SITE_URL is not set: alert and reminder e-mails cannot link to the admin.",
                hint="Set SITE_URL to where the app is served, e.g. https://crm.example.com.",
                id="keys.W010",
            )
        ]
    if not url.startswith(("https://", "http://")):
        return [
            Warning(
                f"SITE_URL {url[:60]!r} is not an http(s) address.",
                hint="e.g. https://crm.example.com",
                id="keys.W011",
            )
        ]
    return []
