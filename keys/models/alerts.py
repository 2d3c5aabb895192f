"""Alerts: one row per episode of an alert condition on a key, and who is e-mailed about them."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .keys import APIKey, when_text


class AlertKind(models.TextChoices):
    HIGH_VOLUME = "high_volume", "High volume"
    ERROR_SPIKE = "error_spike", "Error spike"
    UNUSED = "unused", "Unused key"
    ROTATION_DUE = "rotation_due", "Rotation due"
    OLD_KEY_IN_USE = "old_key_in_use", "Old key still in use"
    UNUSED_PERMISSIONS = "unused_permissions", "Permissions unused"
    OWNER_DEACTIVATED = "owner_deactivated", "Owner deactivated"


# Alerts about who answers for a key, not about its traffic: no figure, not muted with the
# usage alerts.
GOVERNANCE_KINDS = (AlertKind.OWNER_DEACTIVATED,)
# Alerts whose sentence says it all (which clients, which permissions): no figure line either.
SENTENCE_ONLY_KINDS = (*GOVERNANCE_KINDS, AlertKind.OLD_KEY_IN_USE, AlertKind.UNUSED_PERMISSIONS)


class AlertQuerySet(models.QuerySet):
    def needing_attention(self, now: datetime | None = None) -> AlertQuerySet:
        """Open and not snoozed (what the key list badges and the "open" filter show)."""
        now = now or timezone.now()
        return self.filter(resolved_at__isnull=True).exclude(snoozed_until__gt=now)


class Alert(models.Model):
    """One episode of an alert condition: opened when it starts, resolved when it clears (or an
    admin resolves it). An admin may acknowledge it (someone is on it) or snooze it (quiet, and
    not e-mailed, until a time)."""

    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    measured_value = models.FloatField()
    threshold = models.FloatField()
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)
    # The sentence the episode was opened with ("High volume: 10,150 requests in ..."): the
    # e-mail, the alert admin and the key page show it.
    message = models.CharField(max_length=500, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.CharField(max_length=150, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # Why it closed: "The condition cleared.", "Resolved by alice: ...".
    resolution = models.CharField(max_length=300, blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at"]
        # Raised and resolved by the jobs, never added, edited or deleted by hand; handling
        # (acknowledge, snooze, resolve) is its own permission.
        default_permissions = ("view",)
        permissions = [("handle_alert", "Can acknowledge, snooze and resolve alerts")]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_alert_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on “{self.key.name}” ({self.key.display_id})"

    @property
    def has_figures(self) -> bool:
        return self.kind not in SENTENCE_ONLY_KINDS

    @property
    def advice(self) -> str:
        """What the recipient of the e-mail can do about it."""
        if self.kind == AlertKind.OWNER_DEACTIVATED:
            return "Give the key an active owner, or revoke it, on the key page"
        if self.kind == AlertKind.OLD_KEY_IN_USE:
            return "See which clients still call the old key, and revoke it, on the key page"
        if self.kind == AlertKind.UNUSED_PERMISSIONS:
            return "Remove the unused permissions (or mute alerts) on the key page"
        return "Thresholds can be changed, or alerts muted, on the key page"

    @property
    def text(self) -> str:
        """What to show: the message it was raised with (alerts from before messages were
        stored fall back to the figures)."""
        if self.message:
            return self.message
        return (
            f"{self.get_kind_display()}: {self.measured_text()} "
            f"(threshold {self.threshold_text()})."
        )

    def measured_text(self) -> str:
        if not self.has_figures:
            return "—"
        value = self.measured_value
        return {
            AlertKind.HIGH_VOLUME: f"{value:,.0f} requests in an hour",
            AlertKind.ERROR_SPIKE: f"{value:g}% of requests failed",
            AlertKind.UNUSED: f"{int(value)} days without a request",
            AlertKind.ROTATION_DUE: f"{int(value)} days old",
        }.get(self.kind, f"{value:g}")

    def threshold_text(self) -> str:
        if not self.has_figures:
            return "—"
        value = self.threshold
        return {
            AlertKind.HIGH_VOLUME: f"{value:,.0f} requests per hour",
            AlertKind.ERROR_SPIKE: f"{value:g}% of requests",
            AlertKind.UNUSED: f"{int(value)} days",
            AlertKind.ROTATION_DUE: f"{int(value)} days",
        }.get(self.kind, f"{value:g}")

    def state_text(self, now: datetime | None = None) -> str:
        """ "Open", "Acknowledged by alice", "Snoozed until ...", "Resolved ...: why"."""
        now = now or timezone.now()
        if self.resolved_at:
            return f"Resolved {when_text(self.resolved_at)}" + (
                f" — {self.resolution}" if self.resolution else ""
            )
        parts = []
        if self.snoozed_until and self.snoozed_until > now:
            parts.append(f"Snoozed until {when_text(self.snoozed_until)}")
        if self.acknowledged_at:
            parts.append(f"Acknowledged by {self.acknowledged_by or '—'}")
        return " · ".join(parts) or "Open"

    def handling_refusal(self) -> str | None:
        """None when an admin may acknowledge, snooze or resolve it, else why not."""
        if self.resolved_at:
            return "This alert is already resolved."
        return None

    def acknowledge_refusal(self) -> str | None:
        """None when it may be acknowledged, else why not (once per alert: one audit entry)."""
        refusal = self.handling_refusal()
        if refusal is None and self.acknowledged_at:
            refusal = (
                f"This alert was already acknowledged by {self.acknowledged_by or '—'} "
                f"on {when_text(self.acknowledged_at)}."
            )
        return refusal


class AlertRecipient(models.Model):
    """An address alert and reminder e-mails go to. While any is stored, they replace the
    API_KEY_ALERT_RECIPIENTS default."""

    email = models.EmailField(unique=True)
    added_at = models.DateTimeField(default=timezone.now)
    added_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["email"]
        verbose_name = "alert recipient"
        default_permissions = ("add", "delete", "view")

    def __str__(self) -> str:
        return self.email
