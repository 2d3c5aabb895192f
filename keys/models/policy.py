"""The organisation's key policy: one row, edited by people with ``keys.change_keypolicy``,
changed only through ``keys.services.policy_update`` (audited), enforced by the key services.

Each rule is a method here that answers with the sentence to show (None when allowed), so the
services, the admin's forms and the CLI ask the same question; ``breaches`` lists how an
existing key falls short of a policy made stricter after it was generated (such keys are
listed, never changed).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from crm.modules import ACTIONS

from ..conf import key_settings
from ..scopes import describe
from .keys import MAX_CUSTOM_EXPIRY_DAYS, POLICY_DAYS, APIKey, ExpiryPolicy

DAYS = [MinValueValidator(1), MaxValueValidator(MAX_CUSTOM_EXPIRY_DAYS)]
DEFAULT_EXPIRY_CHOICES = [c for c in ExpiryPolicy.choices if c[0] != ExpiryPolicy.CUSTOM]


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


class KeyPolicy(models.Model):
    """The single policy row (pk 1). ``KeyPolicy.current()`` reads it."""

    SINGLETON_PK = 1

    max_lifetime_days = models.PositiveIntegerField(
        "maximum lifetime (days)",
        null=True,
        blank=True,
        validators=DAYS,
        help_text="Blank: no maximum. With a maximum, “Never” and longer expiry choices are "
        "refused (and hidden on the Generate page); rotation gives the new key at most this.",
    )
    require_description = models.BooleanField(
        "require a description",
        default=False,
        help_text="Every new key must say what it is for and who answers for it.",
    )
    default_expiry = models.CharField(
        max_length=8,
        choices=DEFAULT_EXPIRY_CHOICES,
        default=ExpiryPolicy.DAYS_90,
        help_text="Preselected on the Generate page and used by the CLI without --expires.",
    )
    ip_allowlist_actions = models.JSONField(
        "actions that require an IP allowlist",
        default=list,
        blank=True,
        help_text="A key allowed any of these actions, on any module, must have allowed IP "
        "ranges (e.g. delete and export).",
    )
    rotation_days = models.PositiveIntegerField(
        "rotation period (days)",
        null=True,
        blank=True,
        validators=DAYS,
        help_text="Active keys older than this get a “rotation due” alert. Blank: the "
        "ROTATION_REMINDER_DAYS setting.",
    )
    updated_at = models.DateTimeField(null=True, blank=True, editable=False)
    updated_by_label = models.CharField(max_length=150, blank=True, editable=False)

    class Meta:
        verbose_name = "key policy"
        verbose_name_plural = "key policy"
        # One row, never added or deleted through the app: "change" is the dedicated permission.
        default_permissions = ("view", "change")

    def __str__(self) -> str:
        return "Key policy"

    @classmethod
    def current(cls) -> KeyPolicy:
        """The policy in force (the defaults, unsaved, if the row is missing)."""
        return cls.objects.filter(pk=cls.SINGLETON_PK).first() or cls(pk=cls.SINGLETON_PK)

    # Validation (full_clean) -----------------------------------------------------------------

    def clean_fields(self, exclude: Collection[str] | None = None) -> None:
        exclude = set(exclude or ())
        errors: dict[str, list[str]] = {}
        if "ip_allowlist_actions" not in exclude:
            actions = self.ip_allowlist_actions
            if not isinstance(actions, list | tuple) or not all(
                isinstance(a, str) for a in actions
            ):
                errors["ip_allowlist_actions"] = ["A list of actions."]
            elif unknown := sorted(set(actions) - set(ACTIONS)):
                errors["ip_allowlist_actions"] = [
                    f"Unknown action {unknown[0]!r}. Actions: {', '.join(ACTIONS)}."
                ]
            else:
                self.ip_allowlist_actions = [a for a in ACTIONS if a in set(actions)]
            exclude.add("ip_allowlist_actions")
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def clean(self) -> None:
        if self.max_lifetime_days and not self.allows_choice(self.default_expiry):
            raise ValidationError(
                {
                    "default_expiry": f"The default expiry ({self.get_default_expiry_display()}) "
                    f"is longer than the maximum lifetime ({_days(self.max_lifetime_days)})."
                }
            )

    # The rules --------------------------------------------------------------------------------

    def allows_choice(self, choice: str) -> bool:
        """May a key be generated with this expiry choice (a custom date: up to the maximum)?"""
        if not self.max_lifetime_days or choice == ExpiryPolicy.CUSTOM:
            return True
        if choice == ExpiryPolicy.NEVER:
            return False
        return POLICY_DAYS[ExpiryPolicy(choice)] <= self.max_lifetime_days

    def last_expiry_date(self, now: datetime | None = None) -> Any:
        """The last day a new key may work through (server time zone), or None."""
        if not self.max_lifetime_days:
            return None
        return timezone.localdate(now or timezone.now()) + timedelta(days=self.max_lifetime_days)

    def lifetime_refusal(
        self, expires_at: datetime | None, now: datetime | None = None
    ) -> str | None:
        last = self.last_expiry_date(now)
        if last is None:
            return None
        allowed = f"The key policy allows keys of at most {_days(self.max_lifetime_days or 0)}"
        if expires_at is None:
            return f"{allowed}: a key that never expires is not allowed."
        if expires_at > timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min)):
            return f"{allowed}: choose an expiry up to {last:%Y-%m-%d}."
        return None

    def description_refusal(self, description: str) -> str | None:
        if self.require_description and not (description or "").strip():
            return "The key policy requires a description: what the key is for and who owns it."
        return None

    def needing_allowlist(self, scopes: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
        """The scopes of ``scopes`` that require an IP allowlist."""
        listed = set(self.ip_allowlist_actions or ())
        out = {m: [a for a in actions if a in listed] for m, actions in scopes.items()}
        return {m: actions for m, actions in out.items() if actions}

    def ip_allowlist_refusal(
        self, scopes: Mapping[str, Iterable[str]], allowed_ips: str
    ) -> str | None:
        needing = self.needing_allowlist(scopes)
        if not needing or (allowed_ips or "").strip():
            return None
        return (
            f"The key policy requires allowed IP ranges for a key that may "
            f"{' or '.join(self.ip_allowlist_actions)} ({describe(needing)})."
        )

    def rotation_period_days(self) -> int:
        return self.rotation_days or int(key_settings.ROTATION_REMINDER_DAYS)

    def breaches(self, key: APIKey) -> list[str]:
        """How an existing key falls short of this policy (its lifetime counted from its
        creation, a custom date allowed to the end of that day)."""
        found = []
        if self.max_lifetime_days:
            limit = key.created_at + timedelta(days=self.max_lifetime_days + 1)
            if key.expires_at is None:
                found.append("never expires")
            elif key.expires_at > limit:
                lifetime = round((key.expires_at - key.created_at).total_seconds() / 86400)
                found.append(
                    f"lifetime {_days(lifetime)} (maximum {_days(self.max_lifetime_days)})"
                )
        if self.description_refusal(key.description):
            found.append("no description")
        needing = self.needing_allowlist(key.scopes)
        if needing and not key.allowed_ips.strip():
            found.append(f"no IP allowlist for {describe(needing)}")
        return found

    def summary(self) -> list[tuple[str, str]]:
        """The policy as (label, value) lines, for the CLI and the audit message."""
        return [
            (
                "maximum lifetime",
                _days(self.max_lifetime_days) if self.max_lifetime_days else "none",
            ),
            ("description", "required" if self.require_description else "optional"),
            ("default expiry", self.get_default_expiry_display()),
            ("IP allowlist for", ", ".join(self.ip_allowlist_actions or ()) or "no action"),
            (
                "rotation period",
                _days(self.rotation_period_days())
                + ("" if self.rotation_days else " (ROTATION_REMINDER_DAYS)"),
            ),
        ]
