"""python manage.py runjob <name>: run one background job once, in the foreground."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import CommandParser

from crm_keys import cli
from keys.tasks import JOBS


class Command(cli.Command):
    help = (
        "Run one scheduled background job once, in the foreground. Jobs: " + ", ".join(JOBS) + "."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "name", choices=list(JOBS), metavar="NAME", help="one of: " + ", ".join(JOBS)
        )

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        result = JOBS[name].run()
        self.stdout.write(f"{name}: {json.dumps(result, default=str)}")
