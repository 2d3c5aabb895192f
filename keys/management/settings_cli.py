"""The key-page settings on the command line (``apikey create`` and ``apikey update``): rate
limit, IP allowlist, alert thresholds and mute. Values stay text: the model's fields convert and
validate them (through ``services.key_update``), so the CLI holds no copy of a rule; a refusal
is reported after the option that gave the value."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from keys import services
from keys.management.policy_cli import POLICY_OPTIONS

RATE_LIMIT_HELP = (
    "requests per minute, or 'none' for no limit. Counted across every process sharing "
    "REDIS_URL; without Redis, across the processes of one machine (see README)"
)
# option -> (model field, metavar, help)
SETTING_OPTIONS = {
    "--rate-limit": ("rate_limit_per_minute", "N|none", RATE_LIMIT_HELP),
    "--allowed-ips": (
        "allowed_ips",
        "RANGES",
        "CIDR ranges or addresses the key may be used from, comma-separated; '' or 'none' for "
        "any address",
    ),
    "--alert-volume": (
        "alert_volume_per_hour",
        "N|default",
        "high-volume alert above N requests per hour",
    ),
    "--alert-error-rate": (
        "alert_error_rate_percent",
        "PERCENT|default",
        "error-spike alert above this error rate",
    ),
    "--alert-unused-days": (
        "alert_unused_days",
        "DAYS|default",
        "unused-key alert after this many days without a request",
    ),
}
# A refused field -> (the option's dest, the option): the refusal is shown after the option,
# when the subcommand has it (``rotate`` has no --description: a refusal about the key's
# description is then its sentence alone). Permissions come from --scope or --preset.
FIELD_OPTIONS = {
    "name": ("name", "--name"),
    "description": ("description", "--description"),
    "owner": ("owner", "--owner"),
    "expiry_policy": ("expires", "--expires"),
    "expiry_date": ("expires", "--expires"),
    "expires_at": ("expires", "--expires"),
    "alerts_muted": ("alerts_muted", "--mute-alerts"),
    **{field: (field, option) for option, (field, _, _) in SETTING_OPTIONS.items()},
    **POLICY_OPTIONS,
}
_BLANK_WORDS = ("", "none", "default")


def option_for(field: str, options: dict[str, Any]) -> str | None:
    """The option that gave ``field``'s value in this command, if it has one."""
    if field == "scopes":
        return "--preset" if options.get("preset") else "--scope" if options.get("scope") else None
    dest, option = FIELD_OPTIONS.get(field, (None, None))
    return option if dest in options else None


def explain(exc: services.KeyValidationError, options: dict[str, Any]) -> str:
    """The model's refusal, each message after the option that gave the value (never after an
    internal field name: a message with no option of this command stands alone)."""
    if not exc.errors:
        return str(exc)
    parts = []
    for field, messages in exc.errors.items():
        option = option_for(field, options)
        parts.append(f"{option}: {' '.join(messages)}" if option else " ".join(messages))
    return " ".join(parts)


def add_setting_args(p: CommandParser) -> None:
    for option, (field, metavar, text) in SETTING_OPTIONS.items():
        p.add_argument(option, dest=field, metavar=metavar, help=text)
    mute = p.add_mutually_exclusive_group()
    mute.add_argument(
        "--mute-alerts", dest="alerts_muted", action="store_const", const=True, help="no alerts"
    )
    mute.add_argument("--unmute-alerts", dest="alerts_muted", action="store_const", const=False)


def setting_changes(options: dict[str, Any]) -> dict[str, Any]:
    """The settings given on the command line, as ``key_update`` data."""
    data: dict[str, Any] = {}
    for field, _, _ in SETTING_OPTIONS.values():
        value = options.get(field)
        if value is None:
            continue
        blank = value.strip().lower() in _BLANK_WORDS
        if field == "allowed_ips":
            data[field] = "" if blank else value
        else:
            data[field] = None if blank else value.strip()
    if options.get("alerts_muted") is not None:
        data["alerts_muted"] = options["alerts_muted"]
    return data


def settings_lines(data: dict[str, Any]) -> list[tuple[str, str]]:
    """``apikey show``: the settings of ``selectors.key_detail`` as (label, text) lines."""
    limit = data["rate_limit_per_minute"]
    alerts = data["alerts"]

    def threshold(name: str, text: str) -> str:
        item = alerts[name]
        return text.format(item["value"]) + (" (default)" if item["default"] else "")

    return [
        ("rate limit", f"{limit} requests per minute" if limit else "none"),
        ("allowed IPs", ", ".join(data["allowed_ips"]) or "any address"),
        ("alerts", "muted" if alerts["muted"] else "on"),
        ("alert volume", threshold("volume_per_hour", "above {:,} requests per hour")),
        ("alert error rate", threshold("error_rate_percent", "above {}%")),
        ("alert unused", threshold("unused_days", "after {} days")),
    ]
