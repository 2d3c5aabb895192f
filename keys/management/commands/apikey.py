"""python manage.py apikey create|list|show|update|scopes|rotate|revoke|policy ...

``create`` and ``rotate`` print only the key on stdout (details go to stderr), so
``KEY=$(python manage.py apikey create ...)`` works in scripts. ``create`` and ``update`` set
everything the admin's key page can (``settings_cli``); an error is one line on stderr and a
non-zero exit, never a traceback.

Without ``--as`` the command is the system operator (audited as ``cli:<OS user>``); with
``--as USERNAME`` it acts as that person: their Django permissions decide what they may do and
what they may grant (the privilege ceiling), and the audit log names them.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.db import DatabaseError, transaction

from audit.actors import Actor
from crm_keys import cli
from keys import selectors, services
from keys.api import changes
from keys.management.policy_cli import PolicyCommands, add_policy_parser
from keys.management.settings_cli import (
    add_setting_args,
    explain,
    setting_changes,
    settings_lines,
)
from keys.management.values_cli import (
    EXPIRES_HELP,
    GRACE_HELP,
    check_search,
    find_person,
    parse_expires,
    parse_grace,
    read_leaked_key,
)
from keys.models import KeyStatus
from keys.models.keys import when_text
from keys.scopes import PRESETS, ScopeError, describe, parse_scope_args
from keys.usage import insights

AS_HELP = (
    "act as this person: with their permissions, granting only what they hold, recorded as "
    "them in the audit log (default: the system operator; an empty value is refused)"
)


class Command(PolicyCommands, cli.Command):
    help = "Manage API keys: create, list, show, update, scopes, rotate, revoke; the key policy."
    stealth_options = ("stdin",)  # call_command(..., stdin=...) feeds `revoke --leaked -`

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(
            dest="subcommand",
            required=True,
            metavar="{create,list,show,update,scopes,rotate,revoke,policy}",
        )

        def add_scope_args(
            p: CommandParser, required: bool = True, drop_unused: bool = False
        ) -> None:
            group = p.add_mutually_exclusive_group(required=required)
            if drop_unused:
                group.add_argument(
                    "--drop-unused",
                    action="store_true",
                    help="remove the permissions no request used in the last "
                    "UNUSED_SCOPE_DAYS days (30 by default)",
                )
            group.add_argument(
                "--scope",
                action="append",
                metavar="MODULE:ACTION[,ACTION]",
                help="e.g. --scope contacts:view,create --scope leads:view",
            )
            group.add_argument(
                "--preset", choices=list(PRESETS), help="a preset from the admin manual"
            )

        def add_as_arg(p: CommandParser) -> None:
            p.add_argument("--as", dest="as_user", metavar="USERNAME", help=AS_HELP)

        p = sub.add_parser("create", help="generate a key; prints only the key")
        p.add_argument("--name", required=True)
        p.add_argument("--description", default="")
        p.add_argument("--expires", help=EXPIRES_HELP)
        p.add_argument(
            "--owner", metavar="USERNAME", help="who answers for the key (default: the --as person)"
        )
        add_scope_args(p)
        add_setting_args(p)
        add_as_arg(p)

        p = sub.add_parser("list", help="list keys")
        p.add_argument("--json", action="store_true")
        p.add_argument("--status", choices=[s.value for s in KeyStatus])
        p.add_argument("--search", help="text in the name or description")

        p = sub.add_parser("show", help="show one key")
        p.add_argument("ref", metavar="ID_OR_PUBLIC_ID")
        p.add_argument("--json", action="store_true")

        p = sub.add_parser("update", help="change a key's details, permissions and settings")
        p.add_argument("ref", metavar="ID_OR_PUBLIC_ID")
        p.add_argument("--name")
        p.add_argument("--description")
        p.add_argument("--owner", metavar="USERNAME", help="who answers for the key")
        add_scope_args(p, required=False)
        add_setting_args(p)
        add_as_arg(p)

        p = sub.add_parser("scopes", help="replace a key's permissions, or drop unused ones")
        p.add_argument("ref", metavar="ID_OR_PUBLIC_ID")
        add_scope_args(p, drop_unused=True)
        add_as_arg(p)

        p = sub.add_parser(
            "rotate",
            help="new key value, old one works during a grace period; prints only the new key",
        )
        p.add_argument("ref", metavar="ID_OR_PUBLIC_ID")
        p.add_argument("--grace", default="24h", help=GRACE_HELP)
        add_as_arg(p)

        p = sub.add_parser("revoke", help="revoke a key: immediate and permanent")
        p.add_argument("ref", metavar="ID_OR_PUBLIC_ID", nargs="?")
        p.add_argument(
            "--leaked",
            metavar="KEY",
            help="the full key, e.g. found by a secret scanner; '-' reads it from standard input "
            "(recommended: the key stays out of the process list and the shell history)",
        )
        p.add_argument("--reason", default="")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        add_as_arg(p)

        add_policy_parser(sub, add_as_arg)

    def handle(self, *args: Any, **options: Any) -> None:
        handler = getattr(self, f"do_{options['subcommand']}")
        self.stdin = options.get("stdin") or sys.stdin
        # A change that could not reach every process is not a plain success: it is said,
        # and the command fails (the change itself is saved, and what was printed stands).
        not_announced: list[str] = []
        try:
            with changes.reporting_to(not_announced.append):
                handler(options)
        except services.KeyValidationError as exc:
            raise CommandError(cli.one_line(explain(exc, options))) from None
        except (services.KeyServiceError, selectors.KeyNotFound, ScopeError) as exc:
            raise CommandError(cli.one_line(str(exc))) from None
        except DatabaseError as exc:
            message = f"The database refused the operation: {exc}"
            raise CommandError(cli.one_line(message)) from None
        if not_announced:
            raise CommandError(cli.one_line(" ".join(not_announced)))

    # --- helpers -------------------------------------------------------------------------------

    def _scopes(self, options: dict[str, Any]) -> dict[str, list[str]]:
        if options.get("preset"):
            return PRESETS[options["preset"]].scopes()
        return parse_scope_args(options["scope"])

    def _update_data(self, options: dict[str, Any]) -> dict[str, Any]:
        data = {f: options[f] for f in ("name", "description") if options.get(f) is not None}
        if options.get("owner") is not None:
            data["owner"] = find_person(options["owner"], "--owner")
        if options.get("preset") or options.get("scope"):
            data["scopes"] = self._scopes(options)
        return {**data, **setting_changes(options)}

    def _actor(self, options: dict[str, Any]) -> Actor:
        """The system operator, or the --as person."""
        username = options.get("as_user")
        return Actor.cli() if username is None else Actor.cli(find_person(username, "--as"))

    def _info(self, message: str) -> None:
        self.stderr.write(message)

    # --- subcommands ---------------------------------------------------------------------------

    def do_create(self, options: dict[str, Any]) -> None:
        expires = options["expires"]
        policy, custom = parse_expires(expires) if expires is not None else (None, None)
        actor = self._actor(options)
        owner = find_person(options["owner"], "--owner") if options["owner"] is not None else None
        settings = setting_changes(options)
        # One transaction: a setting the model refuses leaves no key behind. The allowlist is
        # part of the new key (the key policy may require one); the other settings are an
        # edit of it, audited as on the key page. The key is printed inside it: a key that
        # cannot be printed is not created.
        with transaction.atomic():
            generated = services.key_generate(
                name=options["name"],
                description=options["description"],
                scopes=self._scopes(options),
                expiry_policy=policy,
                expiry_date=custom,
                owner=owner,
                allowed_ips=settings.pop("allowed_ips", ""),
                actor=actor,
            )
            key = generated.key
            if settings:
                key = services.key_update(key=key, data=settings, actor=actor)
            self.deliver(generated.full_key, undone="nothing was created")
        self._info(
            f"Generated {key.display_id} {key.name!r} ({describe(key.scopes)}); "
            "store it now: it cannot be shown again."
        )

    def do_list(self, options: dict[str, Any]) -> None:
        check_search(options.get("search"))
        keys = selectors.key_list(status=options.get("status"), search=options.get("search"))
        rows = [selectors.key_summary(k) for k in keys]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self._info("No API keys match.")
            return
        self.stdout.write(f"{'ID':>5}  {'KEY':<20} {'STATUS':<8} {'EXPIRES':<26} NAME")
        for r in rows:
            status = r["status"] + ("*" if r["in_grace_period"] else "")
            # As the admin's list: a revoked key no longer has an expiry that matters.
            expires = "—" if r["status"] == KeyStatus.REVOKED else r["expires"]
            self.stdout.write(f"{r['id']:>5}  {r['key']:<20} {status:<8} {expires:<26} {r['name']}")
        if any(r["in_grace_period"] for r in rows):
            self.stdout.write(
                "* replaced by rotation: works until its grace period ends (apikey show ID)."
            )

    def do_show(self, options: dict[str, Any]) -> None:
        key = selectors.key_get(options["ref"])
        data = selectors.key_detail(key)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        usage = data.pop("usage", None)
        settings = {f: data.pop(f) for f in ("rate_limit_per_minute", "allowed_ips", "alerts")}
        callers = {name: data.pop(name) for name in ("clients", "recent_errors")}
        data.pop("expires_at")  # "expires" says it as the admin chose it; --json has both
        for label, value in data.items():
            if isinstance(value, dict | list):
                value = describe(value) if label == "scopes" else json.dumps(value)
            elif label.endswith("_at") and value:
                value = when_text(datetime.fromisoformat(value))
            self.stdout.write(f"{label:>16}: {'' if value is None else value}")
        for label, value in settings_lines(settings):
            self.stdout.write(f"{label:>16}: {value}")
        if usage is not None:
            self._show_usage(usage)
        self._show_callers(**callers)

    def _show_callers(self, clients: list[dict[str, Any]], recent_errors: list[dict]) -> None:
        """Clients and the latest errors as text, ten of each; all of them are in --json."""
        for i, c in enumerate(clients[:10]):
            seen = c["last_seen"][:16].replace("T", " ")
            self.stdout.write(
                f"{'clients' if i == 0 else '':>16}: {c['requests']:>8} req  last {seen}  "
                f"{c['ip'] or '?'}  {c['user_agent'] or '-'}"
            )
        for i, e in enumerate(recent_errors[:10]):
            at = e["at"][:19].replace("T", " ")
            self.stdout.write(
                f"{'recent errors' if i == 0 else '':>16}: {at}  {e['status']} "
                f"{e['method']} {e['endpoint']}  {e['detail']}"
            )

    def _show_usage(self, usage: dict[str, Any]) -> None:
        """The usage figures as text; the hourly series is in --json and the admin's CSV."""
        rate = "-" if usage["error_rate"] is None else f"{usage['error_rate']}%"
        lines = [
            ("total requests", usage["total_requests"]),
            ("requests (24h)", usage["requests_24h"]),
            ("errors (24h)", usage["errors_24h"]),
            ("error rate", rate),
        ]
        for label, value in lines:
            self.stdout.write(f"{label:>16}: {value}")
        for i, row in enumerate(usage["top_endpoints"]):
            label = "top endpoints" if i == 0 else ""
            self.stdout.write(
                f"{label:>16}: {row['requests']:>8} req {row['errors']:>6} err  {row['endpoint']}"
            )

    def do_update(self, options: dict[str, Any]) -> None:
        actor = self._actor(options)  # an unknown --as is reported before any lookup
        key = selectors.key_get(options["ref"])
        data = self._update_data(options)
        if not data:
            raise CommandError(
                "Nothing to change: give at least one option (apikey update --help)."
            )
        key = services.key_update(key=key, data=data, actor=actor)
        self.stdout.write(f"Updated {key.display_id} {key.name!r}.")

    def do_scopes(self, options: dict[str, Any]) -> None:
        key = selectors.key_get(options["ref"])
        if options.get("drop_unused"):
            review = insights.scope_review(key)
            refusal = review.removal_refusal()
            if refusal:
                raise CommandError(refusal)
            scopes = review.pruned(key.scopes)
            self._info(f"Removing unused ({review.days} days): {', '.join(review.unused)}")
        else:
            scopes = self._scopes(options)
        key = services.key_update_scopes(key=key, scopes=scopes, actor=self._actor(options))
        self.stdout.write(f"{key.display_id}: {describe(key.scopes)}")

    def do_rotate(self, options: dict[str, Any]) -> None:
        grace = parse_grace(options["grace"])  # a bad value is reported before any lookup
        key = selectors.key_get(options["ref"])
        with transaction.atomic():  # a new key that cannot be printed is not made
            rotated = services.key_rotate(key=key, grace=grace, actor=self._actor(options))
            self.deliver(rotated.full_key, undone="nothing was rotated")
        self._info(
            f"Rotated {key.display_id} -> {rotated.key.display_id}; the old key remains active "
            f"until {rotated.old_key.grace_ends_at:%Y-%m-%d %H:%M %Z}, then is automatically "
            "revoked. Store the new key value now."
        )

    def do_revoke(self, options: dict[str, Any]) -> None:
        actor = self._actor(options)  # an unknown --as is reported before any lookup
        reason = options["reason"]
        if options["leaked"] is not None:
            if options["ref"]:
                raise CommandError("Give either a key id or --leaked KEY, not both.")
            try:
                key = selectors.key_by_full_key(read_leaked_key(options["leaked"], self.stdin))
            except selectors.KeyNotFound as exc:
                raise CommandError(f"--leaked: {exc}") from None
        elif options["ref"]:
            key = selectors.key_get(options["ref"])
        else:
            raise CommandError("Give the key to revoke (its id or public id), or --leaked KEY.")
        if not options["yes"]:
            if self.stdin is None or not self.stdin.isatty():
                raise CommandError("Revoking is immediate and permanent: pass --yes to confirm.")
            answer = input(
                f"Revoke {key.display_id} {key.name!r}? Integrations using it lose access "
                "at once. Type 'yes' to confirm: "
            )
            if answer.strip().lower() != "yes":
                raise CommandError("Not revoked.")
        services.key_revoke(
            key=key, reason=reason, leaked=options["leaked"] is not None, actor=actor
        )
        self.stdout.write(f"Revoked {key.display_id} {key.name!r}.")
