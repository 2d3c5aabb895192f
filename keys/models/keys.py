"""The API key: its fields with their validators, its status and what may be done with it now.

A key's status is computed from its timestamps (``status_at``), so a key past its expiry or
grace end is refused at once even if no background job has run. Every rule about one key's
fields lives here, and the forms, the services and the CLI all get it through ``full_clean``;
every rule about what may be done with a key now (rotate, revoke, edit) is a method here that
the admin, the services and the CLI ask.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .. import crypto, netrules
from ..scopes import ScopeError, normalize
from .validators import (  # migrations name them here (keys.models.keys.validate_*)
    validate_error_rate,
    validate_finite,  # noqa: F401 - migration 0010_i12 still names it
    validate_no_control_characters,
    validate_no_format_characters,
    validate_no_nul,
    validate_not_blank,
)

NO_PERMISSION_MESSAGE = "Give the key at least one permission (module and action)."
VOLUME_MESSAGE = "The high-volume threshold is at least 1 request per hour."
UNUSED_MESSAGE = "The unused-key threshold is at least 1 day."
RATE_LIMIT_MESSAGE = "The rate limit is at least 1 request per minute (blank: no limit)."


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


MAX_CUSTOM_EXPIRY_DAYS = 3650
POLICY_DAYS = {ExpiryPolicy.DAYS_30: 30, ExpiryPolicy.DAYS_90: 90, ExpiryPolicy.YEAR_1: 365}


def expiry_for(
    policy: str, custom_date: date | None, *, now: datetime | None = None
) -> datetime | None:
    """Expiry time for a policy. A custom date means the key works through that whole day
    (server time zone), so today is a valid choice. Raises ValidationError (on
    ``expiry_date``) for a day already over or absurdly far."""
    now = now or timezone.now()
    policy = ExpiryPolicy(policy)
    if policy == ExpiryPolicy.NEVER:
        return None
    if policy == ExpiryPolicy.CUSTOM:
        if custom_date is None:
            message = "Choose the custom expiry date."
        elif custom_date < timezone.localdate(now):
            message = (
                "The custom expiry date cannot be in the past: choose today or a later day "
                "(the key works through the end of that day)."
            )
        elif custom_date > timezone.localdate(now) + timedelta(days=MAX_CUSTOM_EXPIRY_DAYS):
            message = "The custom expiry date must be within 10 years."
        else:
            return timezone.make_aware(datetime.combine(custom_date + timedelta(days=1), time.min))
        raise ValidationError({"expiry_date": message})
    return now + timedelta(days=POLICY_DAYS[policy])


def when_text(moment: datetime) -> str:
    """How an instant is written for people, everywhere (admin, CLI, e-mails): the date and
    minute in the server's time zone, with the zone: "2026-11-27 14:03 UTC"."""
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


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
        max_length=100,
        help_text='A descriptive label, e.g. "Website Form Integration".',
        validators=[
            validate_not_blank,
            validate_no_control_characters,
            validate_no_format_characters,
        ],
        error_messages={"blank": "The key needs a name."},
    )
    description = models.TextField(
        blank=True,
        max_length=1000,
        help_text="Purpose and owner of the key.",
        validators=[
            validate_no_nul,
            MaxLengthValidator(1000, "The description must be at most 1000 characters."),
        ],
    )
    public_id = models.CharField(max_length=crypto.PUBLIC_ID_LENGTH, unique=True, editable=False)
    # HMAC-SHA256 of the full key under API_KEYS["PEPPER"]; the key itself is never stored.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=dict, error_messages={"blank": NO_PERMISSION_MESSAGE})

    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_label = models.CharField(max_length=150, blank=True, editable=False)
    # The person who answers for the key (default: whoever generated it). The daily job raises
    # an "owner deactivated" alert on the active keys of an owner who is no longer active.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_api_keys",
        help_text="The person who answers for this key.",
    )
    # Who last granted it permissions (generated, rotated, or added a permission): a person
    # can grant only what they hold themselves, so this names whose permissions it stands on.
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    granted_by_label = models.CharField(max_length=150, blank=True, editable=False)

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
    # The first key of this key's rotation lineage (null: this key is the first). The keys of one
    # lineage count against one rate limit, so holding two working keys during a grace period
    # does not double an integration's allowance. Read on the request path with the key itself.
    lineage_root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )

    # Written by the usage flush job, never on the request path.
    last_used_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)

    # Alert overrides (blank: the API_KEYS default) and the rate limit. 0 is nonsense ("unused
    # for 0 days" fires on a key in use), so each has a minimum.
    alert_volume_per_hour = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1, VOLUME_MESSAGE)]
    )
    alert_error_rate_percent = models.FloatField(
        null=True, blank=True, validators=[validate_error_rate]
    )
    alert_unused_days = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1, UNUSED_MESSAGE)]
    )
    alerts_muted = models.BooleanField(default=False)

    # Optional protections.
    rate_limit_per_minute = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1, RATE_LIMIT_MESSAGE)]
    )
    allowed_ips = models.TextField(
        blank=True, help_text="CIDR ranges, one per line. Blank: any address."
    )

    # Bookkeeping for once-only background work.
    expiry_recorded_at = models.DateTimeField(null=True, blank=True, editable=False)
    expiry_reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = APIKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ["-created_at", "-id"]
        # No "delete": keys are revoked, never deleted (the audit trail keeps pointing at them).
        default_permissions = ("add", "change", "view")
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

    def stopped_at(self, now: datetime) -> datetime | None:
        """When the key stopped working (revoked, grace over or expired); None while it works."""
        ends = [t for t in (self.revoked_at, self.grace_ends_at, self.expires_at) if t]
        past = [t for t in ends if t <= now]
        return min(past) if past else None

    def last_rejected_call_at(self, now: datetime) -> datetime | None:
        """``last_used_at`` moves with every call that presents this key, refused or not. A
        call after the key stopped working was rejected (401): that is not use, and the admin
        says so instead of "last used: just now"."""
        stopped = self.stopped_at(now)
        if stopped is not None and self.last_used_at is not None and self.last_used_at > stopped:
            return self.last_used_at
        return None

    @property
    def lineage_id(self) -> int:
        """The rotation lineage this key belongs to: its first key's id."""
        return self.lineage_root_id or self.pk

    def allows(self, module: str, action: str) -> bool:
        return action in self.scopes.get(module, ())

    # How its expiry reads ----------------------------------------------------------------------

    def expiry_day(self) -> date | None:
        """The date an admin chose for a custom expiry. The key works through that whole day,
        so ``expires_at`` is the midnight that ends it (``expiry_for``); the day is derived
        from it rather than stored, so the instant enforced on every request stays the one
        source of truth. None for other policies, or if the time zone changed since (the
        instant is then no longer a local midnight, and is shown as it is)."""
        if self.expiry_policy != ExpiryPolicy.CUSTOM or self.expires_at is None:
            return None
        local = timezone.localtime(self.expires_at)
        if local.time() != time.min:
            return None
        return local.date() - timedelta(days=1)

    def expiry_text(self) -> str:
        """ "2027-01-15, end of day UTC" for a custom date, "2027-02-25 14:03 UTC" for a policy
        (30 days, ...), "Never"."""
        if self.expires_at is None:
            return "Never"
        day = self.expiry_day()
        if day is not None:
            zone = timezone.localtime(self.expires_at - timedelta(microseconds=1)).tzname()
            return f"{day.isoformat()}, end of day {zone}"
        return when_text(self.expires_at)

    # Validation (full_clean) -----------------------------------------------------------------

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        """Normalise before validating: names trimmed, permissions in module and action order,
        IP ranges in canonical form (what the request path compares against)."""
        exclude = set(exclude or ())
        errors: dict[str, list[str]] = {}
        for name in ("name", "description"):
            if name not in exclude and isinstance(getattr(self, name), str):
                setattr(self, name, getattr(self, name).strip())
        if "scopes" not in exclude:
            try:
                self.scopes = normalize(self.scopes or {})
            except (ScopeError, AttributeError, TypeError) as exc:
                errors["scopes"] = [str(exc) if isinstance(exc, ScopeError) else "Not scopes."]
                exclude.add("scopes")
        if "allowed_ips" not in exclude:
            try:
                self.allowed_ips = netrules.normalize_networks(self.allowed_ips)
            except ValueError as exc:
                errors["allowed_ips"] = [str(exc)]
                exclude.add("allowed_ips")
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    # What may be done with the key now ------------------------------------------------------
    # Each returns None when allowed, else the sentence to show the admin or CLI user.

    def rotation_refusal(self, now: datetime | None = None) -> str | None:
        status = self.status_at(now or timezone.now())
        if status != KeyStatus.ACTIVE:
            return f"This key is {status.label.lower()}; only an active key can be rotated."
        if self.replaced_by_id is not None:
            return "This key was already rotated; rotate its replacement instead."
        return None

    def revocation_refusal(self, now: datetime | None = None) -> str | None:
        now = now or timezone.now()
        if self.status_at(now) == KeyStatus.REVOKED:
            return f"This key is already revoked: it was revoked {self.revoked_text(now)}."
        return None

    def revoked_text(self, now: datetime | None = None) -> str:
        """When and by whom it was revoked: "on 2026-11-27 14:03 UTC by admin (compromised)"."""
        now = now or timezone.now()
        if self.revoked_at is not None and self.revoked_at <= now:
            by = self.revoked_by_label or "an unknown actor"
            reason = f" ({self.revoke_reason})" if self.revoke_reason else ""
            return f"on {when_text(self.revoked_at)} by {by}{reason}"
        if self.grace_ends_at is not None and self.grace_ends_at <= now:  # not yet recorded
            ended = when_text(self.grace_ends_at)
            return f"on {ended}, automatically when its rotation grace period ended"
        return ""

    def edit_refusal(self, now: datetime | None = None) -> str | None:
        if self.status_at(now or timezone.now()) == KeyStatus.REVOKED:
            return "This key is revoked; it cannot be edited."
        if self.replaced_by_id is not None:
            # Its replacement carries the integration from now on: an edit here would not
            # reach it, and this key stops at its grace end anyway.
            return (
                f"This is the old key of a rotation: the new key value is "
                f"{self.replaced_by.display_id}; edit that key instead. This one remains active "
                "for the grace period, then it is automatically revoked; or revoke it now."
            )
        return None


# The fields key_update may change (the key page's form and `apikey` edit them).
# Fields derived from a secret: never filterable, searchable or sortable (a filter on a prefix
# recovers a value one character at a time). The admin refuses lookups through them.
SECRET_DERIVED_FIELDS = frozenset({"key_hash"})

EDITABLE_FIELDS: tuple[str, ...] = (
    "name",
    "description",
    "owner",
    "scopes",
    "alert_volume_per_hour",
    "alert_error_rate_percent",
    "alert_unused_days",
    "alerts_muted",
    "rate_limit_per_minute",
    "allowed_ips",
)
