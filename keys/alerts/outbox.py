"""The e-mail outbox: alert and reminder e-mails are queued as rows in the transaction that
decides to send them, and sent after commit by ``deliver`` — never while a transaction or the
audit chain's lock is held, so a stalled mail server delays the mail and nothing else.

What is guaranteed: **at least once**. A queued message is sent by the first delivery after its
transaction committed (the job that queued it delivers at its end; beat runs ``send_outbox``
every minute) and marked sent as soon as the mail server has accepted it. Until then it stays
queued: a refused or timed-out send is retried with backoff (1, 2, 4, … up to 60 minutes,
forever), and a sender that dies mid-send leaves the message claimed for
``OUTBOX_CLAIM_SECONDS``, after which the next run sends it again. So a message is never lost,
and a message whose acceptance was recorded is never sent again; it can arrive twice when the
server accepted it but the acceptance was not recorded (the sender died, or the server's reply
never came back), and then both copies carry the same Message-ID.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import timedelta
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db.models import F
from django.utils import timezone

from ..conf import key_settings
from ..models import OutboxEmail

logger = logging.getLogger(__name__)

MAX_BACKOFF = 3600


def queue(*, subject: str, body: str, to: Sequence[str], from_email: str = "") -> OutboxEmail:
    """Queue one message. Call it inside the transaction that decides to send it: the message
    exists exactly when that decision commits."""
    return OutboxEmail.objects.create(
        subject=subject[:300],
        body=body,
        recipients=list(to),
        from_email=from_email,
        message_id=make_msgid(idstring="crm-keys", domain=_domain(from_email)),
    )


def _domain(from_email: str) -> str:
    # Given, so that make_msgid does not look up this host's name (a DNS query).
    address = parseaddr(from_email or settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "crm-keys.localhost"


def deliver(*, limit: int = 100) -> dict[str, int]:
    """Send up to ``limit`` due messages over one connection, each claimed first and marked
    sent right after the server accepted it. The first failure ends the run (the server is
    failing: the rest wait for the next run). Call it outside any transaction."""
    sent = failed = 0
    backend: Any = None
    try:
        for pk in _due(limit):
            message = _claim(pk)
            if message is None:  # another run has it
                continue
            try:
                if backend is None:
                    backend = get_connection(fail_silently=False)
                    backend.open()
                backend.send_messages([_email(message, backend)])
            except Exception as exc:
                _abort(backend)
                backend = None
                _failed(message, exc)
                failed += 1
                break
            OutboxEmail.objects.filter(pk=message.pk).update(sent_at=timezone.now(), last_error="")
            sent += 1
    finally:
        if backend is not None:
            with contextlib.suppress(Exception):  # QUIT to a server that stopped answering
                backend.close()
    _prune()
    waiting = OutboxEmail.objects.filter(sent_at__isnull=True).count()
    return {"sent": sent, "failed": failed, "waiting": waiting}


def _due(limit: int) -> list[int]:
    return list(
        OutboxEmail.objects.filter(sent_at__isnull=True, next_attempt_at__lte=timezone.now())
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def _claim(pk: int) -> OutboxEmail | None:
    """Take the message for this run (a conditional update, committed before any mail I/O)."""
    now = timezone.now()
    claimed = OutboxEmail.objects.filter(
        pk=pk, sent_at__isnull=True, next_attempt_at__lte=now
    ).update(
        next_attempt_at=now + timedelta(seconds=key_settings.OUTBOX_CLAIM_SECONDS),
        attempts=F("attempts") + 1,
    )
    return OutboxEmail.objects.filter(pk=pk).first() if claimed else None


def _email(message: OutboxEmail, backend: Any) -> EmailMessage:
    return EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=message.from_email or None,
        to=message.recipients,
        headers={"Message-ID": message.message_id},
        connection=backend,
    )


def _abort(backend: Any) -> None:
    """Drop a failed SMTP connection without a QUIT (which would wait on a stalled server)."""
    smtp = getattr(backend, "connection", None)
    if smtp is not None:
        with contextlib.suppress(Exception):
            smtp.close()
        backend.connection = None


def _failed(message: OutboxEmail, exc: Exception) -> None:
    wait = min(60 * 2 ** max(message.attempts - 1, 0), MAX_BACKOFF)
    error = f"{type(exc).__name__}: {exc}"[:300]
    OutboxEmail.objects.filter(pk=message.pk, sent_at__isnull=True).update(
        next_attempt_at=timezone.now() + timedelta(seconds=wait), last_error=error
    )
    logger.warning(
        "e-mail %r (attempt %d) not sent: %s; retrying in %d s",
        message.subject,
        message.attempts,
        error,
        wait,
    )


def _prune() -> None:
    cutoff = timezone.now() - timedelta(days=int(key_settings.OUTBOX_RETENTION_DAYS))
    OutboxEmail.objects.filter(sent_at__lt=cutoff).delete()
