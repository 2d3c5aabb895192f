"""Usage rows: requests and errors per key, hour and endpoint, written only by the flush."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .keys import APIKey


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
