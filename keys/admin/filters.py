"""The key list's filters: owner ("My keys"), status (computed from timestamps), expiration and
usage."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ..models import KeyStatus


class OwnerFilter(admin.SimpleListFilter):
    title = "owner"
    parameter_name = "owner"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("mine", "My keys"),
            ("deactivated", "Owner deactivated"),
            ("none", "No owner"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "mine":
            return queryset.filter(owner=request.user)
        if self.value() == "deactivated":
            return queryset.filter(owner__is_active=False)
        if self.value() == "none":
            return queryset.filter(owner__isnull=True)
        return queryset


class StatusFilter(admin.SimpleListFilter):
    """Computed from timestamps at request time (never a stored column that can go stale)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s.value, s.label) for s in KeyStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in KeyStatus.values:
            return queryset.with_status(self.value())
        return queryset


class ExpiryFilter(admin.SimpleListFilter):
    title = "expiration"
    parameter_name = "expiring"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("7d", "Expiring within 7 days"), ("never", "Never expires")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        if self.value() == "7d":
            return queryset.active(now).filter(
                expires_at__gt=now, expires_at__lte=now + timedelta(days=7)
            )
        if self.value() == "never":
            return queryset.filter(expires_at__isnull=True)
        return queryset


class UsageFilter(admin.SimpleListFilter):
    title = "usage"
    parameter_name = "usage"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("unused30", "Unused 30+ days"), ("never", "Never used")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        cutoff = now - timedelta(days=30)
        if self.value() == "unused30":
            # Active keys nobody has called for 30 days (never-used keys count from creation):
            # the manual's "investigate and revoke if no longer needed".
            return queryset.active(now).filter(
                Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
            )
        if self.value() == "never":
            return queryset.filter(last_used_at__isnull=True)
        return queryset
