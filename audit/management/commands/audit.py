"""python manage.py audit verify | export

verify: walk the hash chain; report the first entry that was changed, removed or inserted
(non-zero exit), and the chain head (count, last hash) to record outside the database.
export: entries as JSON lines (for a SIEM), optionally within a date range.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from audit import chain
from audit.models import AuditEntry

BATCH = 5000


def _rows(batch: int = BATCH) -> Iterator[dict[str, Any]]:
    """Entries in seq order, read in keyset-paginated batches (constant memory)."""
    fields = (*chain.HASHED_FIELDS, "entry_hash")
    last = 0
    while True:
        page = list(AuditEntry.objects.filter(seq__gt=last).order_by("seq").values(*fields)[:batch])
        if not page:
            return
        yield from page
        last = page[-1]["seq"]


def _day(text: str | None, *, end: bool) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{text[:20]!r} is not a date (YYYY-MM-DD).") from None
    if end:
        day += timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time.min))


class Command(BaseCommand):
    help = "Verify the audit log's hash chain, or export entries as JSON lines."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True, metavar="{verify,export}")
        p = sub.add_parser("verify", help="check that no entry was changed, removed or inserted")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p = sub.add_parser("export", help="write entries as JSON lines")
        p.add_argument("--since", help="first day (YYYY-MM-DD), inclusive")
        p.add_argument("--until", help="last day (YYYY-MM-DD), inclusive")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["subcommand"] == "verify":
            self.verify(options)
        else:
            self.export(options)

    def verify(self, options: dict[str, Any]) -> None:
        result = chain.verify(_rows())
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
            self.stdout.write(f"Chain head: #{result.head_seq} {result.head_hash}")
            self.stdout.write("Record the head outside the database to detect truncation later.")
        if not result.ok:
            raise CommandError(
                f"Audit chain BROKEN: {result.problem}. {result.count} entries verified before it "
                f"(last good #{result.head_seq} {result.head_hash})."
            )

    def export(self, options: dict[str, Any]) -> None:
        since, until = _day(options.get("since"), end=False), _day(options.get("until"), end=True)
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
