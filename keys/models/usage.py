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
        # Written by the flush alone and read through the keys: nothing to grant anyone.
        default_permissions = ()
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
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["key", "endpoint"], name="pruned_usage_unique")
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} (pruned)"


class UnknownKeyUsageHour(models.Model):
    """Requests that presented a credential which resolved to no known key, per hour."""

    hour = models.DateTimeField(unique=True)
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"unknown keys @ {self.hour:%Y-%m-%d %H}:00"


class UsageFlush(models.Model):
    """One committed hand-over of counters; its token makes a retried flush a no-op."""

    token = models.CharField(max_length=64, unique=True)
    flushed_at = models.DateTimeField(default=timezone.now, db_index=True)
    requests = models.PositiveBigIntegerField(default=0)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return self.token


# Lengths of what is kept about a caller (the recorder truncates to them).
IP_MAX = 45  # the longest IPv6 text form
USER_AGENT_MAX = 200
DETAIL_MAX = 300


class KeyClient(models.Model):
    """A distinct client of a key (address as resolved with TRUSTED_PROXY_COUNT, and its
    sanitised User-Agent): requests and when it was first and last seen. Written only by the
    usage flush; the most recent ``CLIENTS_PER_KEY`` are kept per key."""

    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="clients")
    ip = models.CharField(max_length=IP_MAX, blank=True)  # "" when the address is unknown
    user_agent = models.CharField(max_length=USER_AGENT_MAX, blank=True)
    requests = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)

    class Meta:
        default_permissions = ()  # written by the flush, read through the key page
        constraints = [
            models.UniqueConstraint(fields=["key", "ip", "user_agent"], name="key_client_unique")
        ]
        indexes = [models.Index(fields=["key", "-last_seen"], name="key_client_recent")]

    def __str__(self) -> str:
        return f"{self.ip or 'unknown address'} {self.user_agent[:40]}"


class RecentError(models.Model):
    """One error response sent to a key: when, method and route, status, the ``detail`` sentence
    it carried, and the client. Never a request body or a secret. Written only by the usage
    flush; the most recent ``RECENT_ERRORS_PER_KEY`` are kept per key."""

    key = models.ForeignKey(APIKey, on_delete=models.CASCADE, related_name="recent_errors")
    at = models.DateTimeField(db_index=True)
    method = models.CharField(max_length=10)
    endpoint = models.CharField(max_length=200)  # the route pattern: /api/v1/leads/{id}/
    status = models.PositiveSmallIntegerField()
    detail = models.CharField(max_length=DETAIL_MAX, blank=True)
    ip = models.CharField(max_length=IP_MAX, blank=True)
    user_agent = models.CharField(max_length=USER_AGENT_MAX, blank=True)

    class Meta:
        default_permissions = ()  # written by the flush, read through the key page
        indexes = [models.Index(fields=["key", "-at"], name="recent_error_recent")]

    def __str__(self) -> str:
        return f"{self.status} {self.method} {self.endpoint} @ {self.at:%Y-%m-%d %H:%M}"
