"""python manage.py unlock_login --user NAME | --ip ADDRESS: end an admin login lockout now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from audit.actors import Actor
from audit.logins import unlock
from crm_keys import cli
from crm_keys.net import normalize_ip


class Command(cli.Command):
    help = (
        "Unlock the admin login of a user, or of a client address, locked after too many "
        "failed attempts. Audited."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", metavar="USERNAME", help="the locked username")
        parser.add_argument("--ip", metavar="ADDRESS", help="the locked client address")

    def handle(self, *args: Any, user: str | None, ip: str | None, **options: Any) -> None:
        if not user and not ip:
            raise CommandError("Name what to unlock: --user USERNAME and/or --ip ADDRESS.")
        address = None
        if ip:
            address = normalize_ip(ip)
            if address is None:
                raise CommandError(f"{ip[:60]!r} is not an IP address.")
        cleared = unlock(actor=Actor.cli(), username=user, ip_address=address)
        target = " and ".join(
            x
            for x in (f"user {user!r}" if user else "", f"address {address}" if address else "")
            if x
        )
        self.stdout.write(f"Unlocked {target}: {cleared} failed-attempt records cleared.")
