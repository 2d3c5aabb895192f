"""Admin forms for API keys: generate, edit, rotate and revoke.

Generate and edit are ModelForms: a key's fields are validated by the rules on the model (the
same ``full_clean`` the services run for the CLI), so the admin holds no copy of them; the
rules about the person (the privilege ceiling, the owner) are asked of ``keys.services.rules``,
the same functions the services enforce. The admin then hands the cleaned data to
``keys.services``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import MinValueValidator
from django.db.models import Q
from django.utils import timezone

from .. import services
from ..models import EDITABLE_FIELDS, APIKey, ExpiryPolicy, KeyPolicy
from ..models.keys import expiry_for
from ..scopes import held_by, role_scopes
from ..services import rules
from .widgets import ScopeMatrixField, ScopeMatrixWidget

OWNER_HELP = "The person who answers for this key; their keys are listed under “My keys”."


def _model_message(field: str, code: str) -> str:
    return APIKey._meta.get_field(field).error_messages[code]


class PersonRulesMixin(forms.Form):
    """What depends on the person at the keyboard: the matrix shows what they may grant (the
    privilege ceiling) and their roles, the owner list holds active users (and the current
    owner), and ``clean()`` asks the services' rules for the ceiling."""

    acting_user: Any = None

    def setup_for_person(self, current_owner_id: int | None = None) -> None:
        if "owner" in self.fields:
            active = (
                Q(is_active=True) | Q(pk=current_owner_id)
                if current_owner_id
                else Q(is_active=True)
            )
            owner = self.fields["owner"]
            owner.queryset = get_user_model().objects.filter(active).order_by("username")
            owner.help_text = OWNER_HELP
        if self.acting_user is not None and "scopes" in self.fields:
            widget = self.fields["scopes"].widget
            widget.grantable = held_by(self.acting_user)
            widget.roles = role_scopes()

    def check_ceiling(self, cleaned: dict[str, Any], already: dict[str, Any] | None) -> None:
        if self.acting_user is None or "scopes" not in cleaned:
            return
        for field, messages in rules.ceiling_errors(
            self.acting_user, cleaned["scopes"], already=already
        ).items():
            self.add_error(field, messages)


class OneTimeFormMixin(forms.Form):
    """A random nonce in a hidden field; the admin records it as used before acting, so a double
    submission (double click, reload, back button) creates nothing the second time."""

    form_nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)


class KeyGenerateForm(PersonRulesMixin, OneTimeFormMixin, forms.ModelForm):
    required_css_class = "required"
    expiry_date = forms.DateField(
        label="Custom date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="With “Custom date”: the key works through the end of this day.",
    )
    scopes = ScopeMatrixField(
        label="Permissions",
        help_text="Follow the principle of least privilege: grant only the actions the "
        "integration needs. A website form only needs to create contacts.",
    )

    class Meta:
        model = APIKey
        fields = ["name", "description", "owner", "expiry_policy", "scopes", "allowed_ips"]
        labels = {"expiry_policy": "Expiration", "allowed_ips": "Allowed IP ranges"}
        help_texts = {
            "name": 'A descriptive label, e.g. "Website Form Integration", "BI Tool Access", '
            '"Zapier Connector".',
            "expiry_policy": "Prefer time-limited keys over permanent ones: expiry forces a "
            "periodic review.",
        }
        widgets = {
            "name": forms.TextInput(attrs={"class": "vTextField", "autocomplete": "off"}),
            "description": forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
            "expiry_policy": forms.RadioSelect,
            "allowed_ips": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
        }
        error_messages = {"name": {"required": _model_message("name", "blank")}}

    field_order = [
        "name",
        "description",
        "owner",
        "expiry_policy",
        "expiry_date",
        "scopes",
        "allowed_ips",
    ]

    def __init__(
        self, *args: Any, user: Any = None, policy: KeyPolicy | None = None, **kwargs: Any
    ) -> None:
        self.acting_user = user
        self.policy = policy or KeyPolicy.current()
        super().__init__(*args, **kwargs)
        self._apply_policy()
        self.setup_for_person()
        self.fields["owner"].help_text = OWNER_HELP + " Blank: you."
        if user is not None and not self.is_bound:
            self.initial.setdefault("owner", user.pk)
        self.fields["expiry_date"].widget.attrs["min"] = timezone.localdate().isoformat()
        self.fields["expiry_date"].help_text = (
            "With “Custom date”: the key works through the end of that day "
            f"({timezone.get_current_timezone_name()})."
        )
        self.fields["expiry_date"].widget.attrs["aria-describedby"] = "id_expiry_date_helptext"

    def _apply_policy(self) -> None:
        """The key policy on the page: expiry choices beyond its maximum lifetime are hidden,
        its default expiry is preselected, a required description and the IP allowlist rule
        are said up front. (``clean`` asks the services' rules, which enforce them.)"""
        policy = self.policy
        expiry = self.fields["expiry_policy"]
        expiry.choices = [c for c in expiry.choices if policy.allows_choice(c[0])]
        self.initial.setdefault("expiry_policy", policy.default_expiry)
        last = policy.last_expiry_date()
        if last is not None:
            self.fields["expiry_date"].widget.attrs["max"] = last.isoformat()
            expiry.help_text += (
                f" The key policy allows keys of at most {policy.max_lifetime_days} days "
                f"(until {last:%Y-%m-%d})."
            )
        if policy.require_description:
            description = self.fields["description"]
            description.required = True
            description.error_messages["required"] = policy.description_refusal("")
            description.help_text += " Required by the key policy."
        ips = self.fields["allowed_ips"]
        ips.help_text = "CIDR ranges or addresses, one per line. Blank: any address."
        if policy.ip_allowlist_actions:
            ips.help_text += (
                " The key policy requires them for a key that may "
                f"{' or '.join(policy.ip_allowlist_actions)}."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        choice = cleaned.get("expiry_policy")
        custom: date | None = cleaned.get("expiry_date")
        expires_at = None
        if choice == ExpiryPolicy.CUSTOM and "expiry_date" in self.errors:
            choice = None  # not a date ("Enter a valid date."): one error, not two
        elif choice == ExpiryPolicy.CUSTOM:
            try:
                expires_at = expiry_for(choice, custom)
            except ValidationError as exc:
                self.add_error(None, exc)
                choice = None
        elif choice:
            cleaned["expiry_date"] = None
            expires_at = expiry_for(choice, None)
        self.check_ceiling(cleaned, already=None)
        if choice and "scopes" in cleaned and "allowed_ips" in cleaned:
            draft = APIKey(
                description=cleaned.get("description", ""),
                scopes=cleaned["scopes"],
                allowed_ips=cleaned["allowed_ips"],
                expires_at=expires_at,
            )
            for field, messages in rules.new_key_policy_errors(self.policy, draft).items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, messages)
        return cleaned


class KeyChangeForm(PersonRulesMixin, forms.ModelForm):
    """The key page. Only the fields ``services.key_update`` accepts; the admin never saves the
    model. ``acting_user`` is set by ``APIKeyAdmin.get_form``."""

    scopes = ScopeMatrixField(
        label="Permissions",
        widget=ScopeMatrixWidget(show_presets=True),
        help_text="Changing permissions takes effect immediately: the next API request with "
        "this key is evaluated against them.",
    )

    class Meta:
        model = APIKey
        fields = list(EDITABLE_FIELDS)
        labels = {
            "alert_volume_per_hour": "High volume: requests per hour above",
            "alert_error_rate_percent": "Error spike: error rate (%) above",
            "alert_unused_days": "Unused key: days without a request",
            "alerts_muted": "Mute alerts for this key",
            "rate_limit_per_minute": "Rate limit (requests per minute)",
            "allowed_ips": "Allowed IP ranges",
        }
        help_texts = {
            "alert_volume_per_hour": "Blank: the default (10,000 per hour).",
            "alert_error_rate_percent": "Blank: the default (10%).",
            "alert_unused_days": "Blank: the default (30 days).",
            "rate_limit_per_minute": "Blank: no per-key limit. One count for every web process "
            "sharing Redis; without Redis, for the processes of one machine. Responses tell the "
            "integration its limit and what remains (RateLimit-* headers).",
        }
        error_messages = {"name": {"required": _model_message("name", "blank")}}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setup_for_person(current_owner_id=self.instance.owner_id)
        # Below the form field's own minimum (0 for a positive integer) the model's sentence
        # too ("at least 1 day"), not Django's generic "greater than or equal to 0".
        # The input's own min follows the model's too (the spinner stops at 1 day, not 0).
        for name, field in self.fields.items():
            minimum = _model_minimum(name)
            if minimum:
                field.error_messages["min_value"] = minimum.message
                field.widget.attrs["min"] = minimum.limit_value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        refusal = self.instance.pk and self.instance.edit_refusal()
        if refusal:
            raise ValidationError(refusal)
        # Before _post_clean: the instance still holds the stored permissions.
        self.check_ceiling(cleaned, already=self.instance.scopes)
        return cleaned

    def service_changes(self) -> dict[str, Any]:
        """The ``data`` for ``services.key_update``."""
        return {f: self.cleaned_data[f] for f in self.Meta.fields if f in self.cleaned_data}


def _model_minimum(name: str) -> MinValueValidator | None:
    """The key model's minimum for field ``name`` (with its own message), if it has one."""
    try:
        field = APIKey._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    for validator in field.validators:
        if isinstance(validator, MinValueValidator) and isinstance(validator.message, str):
            return validator
    return None


class RotateForm(OneTimeFormMixin):
    grace = forms.ChoiceField(
        label="Grace period",
        choices=[("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days")],
        initial="24h",
        widget=forms.RadioSelect,
        help_text="How long the old key remains active after the new key value is generated.",
    )

    def clean_grace(self) -> timedelta:
        return services.GRACE_CHOICES[self.cleaned_data["grace"]]


class RevokeForm(forms.Form):
    required_css_class = "required"
    reason = forms.CharField(
        required=False,
        max_length=200,
        label="Reason (optional)",
        help_text="Recorded in the audit log, e.g. “compromised” or “integration retired”.",
        widget=forms.TextInput(attrs={"class": "vTextField", "autocomplete": "off"}),
    )


class LeakedKeyForm(forms.Form):
    """Admin > API keys > Revoke a leaked key: the key is pasted, never shown back."""

    required_css_class = "required"
    full_key = forms.CharField(
        label="The leaked key",
        strip=True,
        error_messages={"required": "Paste the full key (icrm_…) that was found."},
        help_text="The whole value, as a secret scanner or a colleague found it. It is used to "
        "find the key (by its hash) and is never stored, logged or shown again.",
        widget=forms.PasswordInput(
            attrs={
                "class": "vTextField",
                "autocomplete": "off",
                "spellcheck": "false",
                "autocapitalize": "off",
                "data-lpignore": "true",
            }
        ),
    )
    reason = forms.CharField(
        required=False,
        max_length=180,
        label="Where it was found (optional)",
        help_text="Recorded in the audit log, e.g. “public GitHub repository”.",
        widget=forms.TextInput(attrs={"class": "vTextField", "autocomplete": "off"}),
    )
