"""The e-mail outbox: one row per message, written in the transaction that decides to send it
and sent after commit by ``keys.alerts.outbox.deliver``."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone


class OutboxEmail(models.Model):
    """An e-mail to send (alert or reminder): never lost, sent at least once.

    ``next_attempt_at`` is both the schedule and the claim: a sender moves it forward by the
    claim period before it talks to the mail server, so no other sender takes the message
    meanwhile, and a sender that died mid-send leaves it due again when the claim runs out."""

    created_at = models.DateTimeField(default=timezone.now)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    from_email = models.CharField(max_length=254, blank=True)  # "": DEFAULT_FROM_EMAIL
    recipients = models.JSONField()  # list of addresses
    # Fixed when queued, so every copy of a message sent twice carries the same Message-ID
    # (mail clients and many servers show such copies once).
    message_id = models.CharField(max_length=200, unique=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Written and sent by the app alone: nothing to grant anyone.
        default_permissions = ()
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(sent_at__isnull=True), name="outbox_due"
            ),
            models.Index(fields=["sent_at"], name="outbox_sent"),
        ]

    def __str__(self) -> str:
        return self.subject
