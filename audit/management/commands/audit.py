"""python manage.py audit verify | export

verify: walk the hash chain and its MACs; report the first entry that was changed, removed,
inserted or rewritten (non-zero exit), and the chain head (SEQ:HASH) to record outside the
database. --expect-head SEQ:HASH: also fail unless the chain still holds that entry with that
hash (catches deleted newest entries, an emptied table, rewrites after a recorded head).
export: entries as JSON lines (for a SIEM), optionally within a date range.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone

from audit import anchor, chain
from audit.models import AuditEntry
from crm_keys import cli

BATCH = 5000


def _day(option: str, text: str | None, *, end: bool) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise CommandError(f"{option} {text[:20]!r}: not a date (YYYY-MM-DD).") from None
    if end:
        if day == date.max:
            return None  # through the last day there is: no upper bound
        day += timedelta(days=1)
    try:
        return timezone.make_aware(datetime.combine(day, time.min))
    except (OverflowError, ValueError):  # a first day so early no time zone can hold it
        return None


class Command(cli.Command):
    help = "Verify the audit log's hash chain, or export entries as JSON lines."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="{verify,export}")
        p = sub.add_parser("verify", help="check that no entry was changed, removed or inserted")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.add_argument(
            "--expect-head",
            metavar="SEQ:HASH",
            help="a head recorded earlier: fail unless the chain still holds it",
        )
        p = sub.add_parser("export", help="write entries as JSON lines")
        p.add_argument("--since", help="first day (YYYY-MM-DD), inclusive")
        p.add_argument("--until", help="last day (YYYY-MM-DD), inclusive")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self.verify(options)
        else:
            self.export(options)

    def verify(self, options: dict[str, Any]) -> None:
        expect = None
        if options.get("expect_head") is not None:
            try:
                expect = chain.parse_head(options["expect_head"])
            except ValueError as exc:
                raise CommandError(f"--expect-head: {exc}") from None
        result = chain.verify(anchor.rows(), expect_head=expect)
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": result.ok,
                        "count": result.count,
                        "head_seq": result.head_seq,
                        "head_hash": result.head_hash,
                        "problem": result.problem,
                    }
                )
            )
        elif result.ok:
            self.stdout.write(f"OK: {result.count} entries, chain intact.")
            if expect is not None:
                self.stdout.write(f"The recorded head #{expect[0]} is still in the chain.")
            self.stdout.write(f"Chain head: #{result.head_seq} {result.head_hash}")
            self.stdout.write(
                "Record it outside the database; later check with "
                f"--expect-head {result.head_seq}:{result.head_hash}"
            )
        if not result.ok:
            raise CommandError(
                f"Audit chain BROKEN: {result.problem}. {result.count} entries verified before it "
                f"(last good #{result.head_seq} {result.head_hash})."
            )

    def export(self, options: dict[str, Any]) -> None:
        since = _day("--since", options.get("since"), end=False)
        until = _day("--until", options.get("until"), end=True)
        if since and until and since >= until:
            raise CommandError("--since must be on or before --until.")
        entries = AuditEntry.objects.order_by("seq")
        if since:
            entries = entries.filter(created_at__gte=since)
        if until:
            entries = entries.filter(created_at__lt=until)
        for row in entries.values().iterator(chunk_size=BATCH):
            row["created_at"] = row["created_at"].isoformat()
            self.stdout.write(json.dumps(row, ensure_ascii=False, sort_keys=True))
