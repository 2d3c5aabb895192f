"""Alerts: one row per episode of an alert condition on a key."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from .keys import APIKey


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


class Alert(models.Model):
    """One episode of an alert condition: opened when it starts, resolved when it clears."""

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

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key", "kind"],
                condition=Q(resolved_at__isnull=True),
                name="one_open_alert_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.key.display_id}"

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
            f"{self.get_kind_display()}: measured {self.measured_value:g} "
            f"(threshold {self.threshold:g})."
        )
