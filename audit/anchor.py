"""The chain head, recorded outside the audit table's reach.

No chain can tell a log whose newest entries were deleted from one that is simply shorter;
a head (``SEQ:HASH``) recorded elsewhere can. ``record_head`` (the daily ``record_audit_head``
job) verifies the whole chain against the head it recorded last, then appends the current head
to ``AUDIT_HEAD_FILE`` (``$CRM_KEYS_VAR_DIR/audit-head.log``) and logs it on the ``audit``
logger. Ship that log line (or copy the file) somewhere the database's users cannot write —
a log service, a WORM bucket, a ticket — and check with ``audit verify --expect-head``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from . import chain
from .models import AuditEntry

logger = logging.getLogger("audit")
BATCH = 5000


def rows(batch: int = BATCH) -> Iterator[dict[str, Any]]:
    """Entries in seq order, read in keyset-paginated batches (constant memory)."""
    fields = (*chain.HASHED_FIELDS, "entry_hash", "mac")
    last = 0
    while True:
        page = list(AuditEntry.objects.filter(seq__gt=last).order_by("seq").values(*fields)[:batch])
        if not page:
            return
        yield from page
        last = page[-1]["seq"]


def head_file() -> Path:
    return Path(
        getattr(settings, "AUDIT_HEAD_FILE", "") or Path(settings.VAR_DIR) / "audit-head.log"
    )


def last_recorded_head(path: Path) -> tuple[int, str] | None:
    """The newest good head in the file (lines: ``<time> <SEQ:HASH>`` or ``<time> BROKEN …``)."""
    if not path.exists():
        return None
    for line in reversed(path.read_text(errors="replace").splitlines()):
        parts = line.split()
        if len(parts) == 2:
            try:
                return chain.parse_head(parts[1])
            except ValueError:
                continue
    return None


def record_head() -> dict[str, Any]:
    path = head_file()
    expected = last_recorded_head(path)
    result = chain.verify(rows(), expect_head=expected)
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    head = f"{result.head_seq}:{result.head_hash}"
    if result.ok:
        line = f"{now} {head}"
        logger.info("audit chain head %s (%s entries, intact)", head, result.count)
    else:
        line = f"{now} BROKEN {result.problem}; last good {head}"
        logger.error("audit chain BROKEN: %s (last good %s)", result.problem, head)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(line + "\n")
    return {"ok": result.ok, "head": head, "count": result.count, "problem": result.problem}
