"""``apikey policy show|set``: the organisation's key policy from the command line (the
``apikey`` command mixes ``PolicyCommands`` in)."""

from __future__ import annotations

import json
import re
from typing import Any

from django.core.management.base import CommandError, CommandParser

from keys import selectors, services
from keys.models import KeyPolicy
from keys.models.policy import DEFAULT_EXPIRY_CHOICES

_LIFETIME = re.compile(r"^(\d{1,5})([dwy])$")
_UNIT_DAYS = {"d": 1, "w": 7, "y": 365}
_NONE_WORDS = ("none", "default", "")
# A refused policy field -> (the option's dest, the option), for ``settings_cli.explain``.
POLICY_OPTIONS = {
    "max_lifetime_days": ("max_lifetime", "--max-lifetime"),
    "require_description": ("require_description", "--require-description"),
    "default_expiry": ("default_expiry", "--default-expiry"),
    "ip_allowlist_actions": ("ip_allowlist_for", "--ip-allowlist-for"),
    "rotation_days": ("rotation_days", "--rotation-days"),
}


def parse_days(option: str, text: str) -> int | None:
    """``90d``, ``12w``, ``1y`` -> days; ``none`` -> None (no rule)."""
    value = text.strip().lower()
    if value in _NONE_WORDS:
        return None
    if value.isdigit():
        return int(value)
    match = _LIFETIME.fullmatch(value)
    if not match:
        raise CommandError(f"{option} {text[:20]!r}: expected e.g. 90d, 12w, 1y or none.")
    return int(match.group(1)) * _UNIT_DAYS[match.group(2)]


def parse_actions(text: str) -> list[str]:
    value = text.strip().lower()
    return [] if value in _NONE_WORDS else [a.strip() for a in value.split(",") if a.strip()]


def add_policy_parser(sub: Any, add_as_arg: Any) -> None:
    p = sub.add_parser("policy", help="show or change the organisation's key policy")
    actions = p.add_subparsers(dest="policy_action", required=True, metavar="{show,set}")
    show = actions.add_parser("show", help="the policy, and the active keys that break it")
    show.add_argument("--json", action="store_true")
    change: CommandParser = actions.add_parser("set", help="change the policy (audited)")
    change.add_argument(
        "--max-lifetime", metavar="DAYS", help="e.g. 90d, 12w, 1y; none for no maximum"
    )
    describe = change.add_mutually_exclusive_group()
    describe.add_argument(
        "--require-description", dest="require_description", action="store_const", const=True
    )
    describe.add_argument(
        "--no-require-description", dest="require_description", action="store_const", const=False
    )
    change.add_argument(
        "--default-expiry", choices=[c for c, _ in DEFAULT_EXPIRY_CHOICES], help="for new keys"
    )
    change.add_argument(
        "--ip-allowlist-for",
        metavar="ACTIONS",
        help="actions whose keys need allowed IP ranges, e.g. delete,export; none for no rule",
    )
    change.add_argument(
        "--rotation-days", metavar="DAYS", help="rotation reminder age, e.g. 90d; default: setting"
    )
    add_as_arg(change)


class PolicyCommands:
    """``do_policy`` for the apikey command (which supplies stdout and ``_actor``)."""

    stdout: Any

    def do_policy(self, options: dict[str, Any]) -> None:
        if options["policy_action"] == "set":
            data = self._policy_changes(options)
            if not data:
                raise CommandError(
                    "Nothing to change: give at least one option (policy set --help)."
                )
            policy = services.policy_update(data=data, actor=self._actor(options))  # type: ignore[attr-defined]
            self.stdout.write("Key policy updated.")
        else:
            policy = KeyPolicy.current()
        breaches = selectors.policy_breaches(policy)
        if options.get("json"):
            self.stdout.write(json.dumps(self._policy_json(policy, breaches), indent=2))
            return
        for label, value in policy.summary():
            self.stdout.write(f"{label:>18}: {value}")
        if not breaches:
            self.stdout.write("Every active key meets the policy.")
            return
        self.stdout.write(
            f"{len(breaches)} active key(s) break the policy (listed, not changed: edit, rotate "
            "or revoke them):"
        )
        for key, found in breaches:
            self.stdout.write(f"  {key.pk:>5}  {key.display_id:<20} {key.name}: {'; '.join(found)}")

    @staticmethod
    def _policy_changes(options: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if options.get("max_lifetime") is not None:
            data["max_lifetime_days"] = parse_days("--max-lifetime", options["max_lifetime"])
        if options.get("require_description") is not None:
            data["require_description"] = options["require_description"]
        if options.get("default_expiry"):
            data["default_expiry"] = options["default_expiry"]
        if options.get("ip_allowlist_for") is not None:
            data["ip_allowlist_actions"] = parse_actions(options["ip_allowlist_for"])
        if options.get("rotation_days") is not None:
            data["rotation_days"] = parse_days("--rotation-days", options["rotation_days"])
        return data

    @staticmethod
    def _policy_json(policy: KeyPolicy, breaches: list[Any]) -> dict[str, Any]:
        return {
            "policy": {
                "max_lifetime_days": policy.max_lifetime_days,
                "require_description": policy.require_description,
                "default_expiry": policy.default_expiry,
                "ip_allowlist_actions": policy.ip_allowlist_actions,
                "rotation_days": policy.rotation_period_days(),
                "updated_at": policy.updated_at.isoformat() if policy.updated_at else None,
                "updated_by": policy.updated_by_label,
            },
            "breaches": [
                {"id": key.pk, "public_id": key.public_id, "name": key.name, "breaches": found}
                for key, found in breaches
            ],
        }
