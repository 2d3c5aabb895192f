"""The append-only audit log.

Entries are written only by ``audit.services.audit_record``. Each stores a SHA-256 hash over its
own canonical content and the previous entry's hash, and a MAC of that hash under a key kept
out of the database, so ``manage.py audit verify`` can tell when an entry was changed, removed,
inserted or rewritten (``audit/chain.py``). The application refuses to update or delete
entries (model, queryset and admin); on PostgreSQL a trigger refuses it at the database too.
"""

from __future__ import annotations

from typing import Any, NoReturn

from django.db import models
from django.utils import timezone

from keys.crypto import display_id


class AuditAction(models.TextChoices):
    GENERATED = "generated", "Generated"
    EDITED = "edited", "Edited"
    SCOPES_CHANGED = "scopes_changed", "Scopes changed"
    ROTATED = "rotated", "Rotated"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired"
    ALERT_RAISED = "alert_raised", "Alert raised"
    ALERT_ACKNOWLEDGED = "alert_acknowledged", "Alert acknowledged"
    ALERT_SNOOZED = "alert_snoozed", "Alert snoozed"
    ALERT_RESOLVED = "alert_resolved", "Alert resolved"
    RECIPIENT_ADDED = "recipient_added", "Alert recipient added"
    RECIPIENT_REMOVED = "recipient_removed", "Alert recipient removed"
    REMINDER = "reminder", "Reminder sent"
    ACCESS_DENIED = "access_denied", "Access denied"
    POLICY_CHANGED = "policy_changed", "Key policy changed"
    LOGIN_LOCKED_OUT = "login_locked_out", "Admin login locked"
    LOGIN_UNLOCKED = "login_unlocked", "Admin login unlocked"


class AppendOnlyError(Exception):
    pass


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be changed.")

    def delete(self) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be deleted.")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be changed.")


class AuditEntry(models.Model):
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor_label = models.CharField("actor", max_length=150, db_index=True)
    # No foreign key: deleting a user must not touch (and so alter) audit rows.
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    ip = models.GenericIPAddressField("IP address", null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    key_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    key_public_id = models.CharField("key", max_length=12, blank=True, db_index=True)
    key_name = models.CharField(max_length=100, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    entry_hash = models.CharField(max_length=64, unique=True, editable=False)
    # "<key id>:<HMAC-SHA256 of entry_hash under the chain key>" (audit/chain.py): the chain
    # key is not in the database, so whoever can write this table cannot forge it.
    mac = models.CharField(max_length=80, editable=False, default="")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log entries"
        ordering = ["-seq"]
        # Only the app writes entries, and nobody changes or deletes them: "view" is the one
        # permission there is to grant.
        default_permissions = ("view",)

    def __str__(self) -> str:
        target = f" {display_id(self.key_public_id)}" if self.key_public_id else ""
        return f"#{self.seq} {self.get_action_display()}{target} by {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Integrity guard, not business logic: an existing entry is never written again.
        if self.pk is not None and not kwargs.get("force_insert"):
            raise AppendOnlyError("Audit entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnlyError("Audit entries cannot be deleted.")
