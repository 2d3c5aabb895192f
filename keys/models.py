"""API keys, their usage rows and alerts.

A key's status is computed from its timestamps (``status_at``), so a key past its expiry or
grace end is refused at once even if no background job has run.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import crypto


class KeyStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class ExpiryPolicy(models.TextChoices):
    NEVER = "never", "Never (not recommended)"
    DAYS_30 = "30d", "30 days"
    DAYS_90 = "90d", "90 days"
    YEAR_1 = "1y", "1 year"
    CUSTOM = "custom", "Custom date"


class APIKeyQuerySet(models.QuerySet):
    """Status filters computed from timestamps at ``now`` (never a stored status)."""

    def revoked(self, now: datetime | None = None) -> APIKeyQuerySet:
        now = now or timezone.now()
        return self.filter(Q(revoked_at__lte=now) | Q(grace_ends_at__lte=now))

    def expired(self, now: datetime | None = None) -> APIKeyQuerySet:
        now = now or timezone.now()
        return self.exclude(Q(revoked_at__lte=now) | Q(grace_ends_at__lte=now)).filter(
            expires_at__lte=now
        )

    def active(self, now: datetime | None = None) -> APIKeyQuerySet:
        now = now or timezone.now()
        return self.exclude(
            Q(revoked_at__lte=now) | Q(grace_ends_at__lte=now) | Q(expires_at__lte=now)
        )

    def with_status(self, status: str, now: datetime | None = None) -> APIKeyQuerySet:
        return {
            KeyStatus.ACTIVE: self.active,
            KeyStatus.EXPIRED: self.expired,
            KeyStatus.REVOKED: self.revoked,
        }[KeyStatus(status)](now)


class APIKey(models.Model):
    name = models.CharField(
        max_length=100, help_text='A descriptive label, e.g. "Website Form Integration".'
    )
    description = models.TextField(
        blank=True, max_length=1000, help_text="Purpose and owner of the key."
    )
    public_id = models.CharField(max_length=crypto.PUBLIC_ID_LENGTH, unique=True, editable=False)
    # HMAC-SHA256 of the full key under API_KEYS["PEPPER"]; the key itself is never stored.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=150, blank=True, editable=False)

    expiry_policy = models.CharField(
        max_length=8, choices=ExpiryPolicy.choices, default=ExpiryPolicy.DAYS_90
    )
    expires_at = models.DateTimeField(null=True, blank=True, db_index=True)

    revoked_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)
    revoked_by_label = models.CharField(max_length=150, blank=True, editable=False)
    revoke_reason = models.CharField(max_length=200, blank=True, editable=False)

    # Rotation: the old key points at its replacement and keeps working until grace_ends_at.
    replaced_by = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="replaces",
        editable=False,
    )
    grace_ends_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)

    # Written by the usage flush job, never on the request path.
    last_used_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)

    # Alert overrides: blank means the default from API_KEYS settings.
    alert_volume_per_hour = models.PositiveIntegerField(null=True, blank=True)
    alert_error_rate_percent = models.FloatField(null=True, blank=True)
    alert_unused_days = models.PositiveIntegerField(null=True, blank=True)
    alerts_muted = models.BooleanField(default=False)

    # Optional protections.
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    allowed_ips = models.TextField(
        blank=True, help_text="CIDR ranges, one per line. Blank: any address."
    )
    allowed_origins = models.TextField(
        blank=True, help_text="Browser origins allowed to use this key, one per line."
    )

    # Bookkeeping for once-only background work.
    expiry_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    expiry_reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotation_reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = APIKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ["-created_at", "-id"]
        permissions = [
            ("rotate_apikey", "Can rotate API key"),
            ("revoke_apikey", "Can revoke API key"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_id})"

    @property
    def display_id(self) -> str:
        return crypto.display_id(self.public_id)

    def status_at(self, now: datetime) -> KeyStatus:
        if self.revoked_at is not None and self.revoked_at <= now:
            return KeyStatus.REVOKED
        if self.grace_ends_at is not None and self.grace_ends_at <= now:
            return KeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return KeyStatus.EXPIRED
        return KeyStatus.ACTIVE

    @property
    def status(self) -> KeyStatus:
        return self.status_at(timezone.now())

    def in_grace_at(self, now: datetime) -> bool:
        return self.grace_ends_at is not None and self.status_at(now) == KeyStatus.ACTIVE

    @property
    def in_grace(self) -> bool:
        return self.in_grace_at(timezone.now())

    def allows(self, module: str, action: str) -> bool:
        return action in self.scopes.get(module, ())


class UsageHour(models.Model):
    """Requests and errors for one key, one hour and one endpoint (``GET /api/v1/contacts/{id}/``)."""

    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="usage_hours")
    hour = models.DateTimeField()
    endpoint = models.CharField(max_length=200)
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "hour", "endpoint"], name="usage_hour_unique")
        ]
        indexes = [models.Index(fields=["hour"]), models.Index(fields=["key", "hour"])]

    def __str__(self) -> str:
        return f"{self.endpoint} @ {self.hour:%Y-%m-%d %H}:00"


class PrunedUsage(models.Model):
    """Counts of hourly rows removed by the retention prune, per key and endpoint, so lifetime
    totals and lifetime top endpoints survive the retention window."""

    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="pruned_usage")
    endpoint = models.CharField(max_length=200)
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "endpoint"], name="pruned_usage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} (pruned)"


class UnknownKeyUsageHour(models.Model):
    """Requests that presented a credential which resolved to no known key, per hour."""

    hour = models.DateTimeField(unique=True)
    requests = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"unknown keys @ {self.hour:%Y-%m-%d %H}:00"


class UsageFlush(models.Model):
    """One committed hand-over of counters; its token makes a retried flush a no-op."""

    token = models.CharField(max_length=64, unique=True)
    flushed_at = models.DateTimeField(default=timezone.now, db_index=True)
    requests = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.token


class AlertKind(models.TextChoices):
    HIGH_VOLUME = "high_volume", "High volume"
    ERROR_SPIKE = "error_spike", "Error spike"
    UNUSED = "unused", "Unused key"
    ROTATION_DUE = "rotation_due", "Rotation due"


class Alert(models.Model):
    """One episode of an alert condition: opened when it starts, resolved when it clears."""

    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=20, choices=AlertKind.choices)
    measured_value = models.FloatField()
    threshold = models.FloatField()
    opened_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

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
