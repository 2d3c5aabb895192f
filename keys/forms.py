"""Admin forms for API keys: generate, edit, rotate and revoke.

The permission matrix is one form field (``ScopeMatrixField``) whose widget renders a
module x action table of labelled checkboxes, so the same field works on the Generate page and
on the key page. Forms validate everything in ``clean()``; the admin then hands the cleaned data
to ``keys.services`` (which validates again, as it must for the CLI and the API).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from crm.modules import ACTION_LABELS, ACTIONS, MODULES

from . import services
from .models import APIKey, ExpiryPolicy
from .netrules import normalize_networks
from .scopes import PRESETS, ScopeError, Scopes, normalize

NO_PERMISSION_MESSAGE = (
    "Give the key at least one permission: tick the actions it needs in the matrix "
    "(or pick a preset)."
)


class ScopeMatrixWidget(forms.Widget):
    """A table of checkboxes named ``<name>__<module>__<action>`` with row and column toggles.

    Rendered with the project's template engine (the form renderer only sees app templates).
    """

    template_name = "admin/keys/apikey/_scope_matrix.html"

    class Media:
        css = {"all": ("keys/admin.css",)}
        js = ("keys/scope_matrix.js",)

    def __init__(self, attrs: dict[str, Any] | None = None, *, show_presets: bool = True) -> None:
        super().__init__(attrs)
        self.show_presets = show_presets

    def checkbox_name(self, name: str, module: str, action: str) -> str:
        return f"{name}__{module}__{action}"

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Scopes:
        return {
            module: [a for a in ACTIONS if data.get(self.checkbox_name(name, module, a))]
            for module in MODULES
        }

    def value_omitted_from_data(self, data: Any, files: Any, name: str) -> bool:
        # Unticked checkboxes are never sent: an empty matrix is a value, not an omission.
        return False

    def format_value(self, value: Any) -> Scopes:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = {}
        return value if isinstance(value, Mapping) else {}

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        scopes = self.format_value(value)
        base_id = (attrs or {}).get("id") or f"id_{name}"
        rows = []
        for module in MODULES.values():
            granted = set(scopes.get(module.name, ()))
            rows.append(
                {
                    "name": module.name,
                    "label": module.label,
                    "cells": [
                        {
                            "action": action,
                            "label": ACTION_LABELS[action],
                            "name": self.checkbox_name(name, module.name, action),
                            "id": f"{base_id}_{module.name}_{action}",
                            "checked": action in granted,
                        }
                        for action in ACTIONS
                    ],
                }
            )
        context.update(
            {
                "matrix_id": base_id,
                "actions": [{"name": a, "label": ACTION_LABELS[a]} for a in ACTIONS],
                "rows": rows,
                "presets": [
                    {
                        "slug": p.slug,
                        "label": p.label,
                        "description": p.description,
                        "warning": p.warning,
                        "scopes_json": json.dumps(p.scopes()),
                    }
                    for p in PRESETS.values()
                ]
                if self.show_presets
                else [],
            }
        )
        return context

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        return mark_safe(render_to_string(self.template_name, self.get_context(name, value, attrs)))  # noqa: S308

    def id_for_label(self, id_: str) -> str:
        # The matrix is a table, not one control; its caption names it. Each checkbox has its
        # own <label>.
        return ""


class ScopeMatrixField(forms.Field):
    widget = ScopeMatrixWidget
    default_error_messages = {"required": NO_PERMISSION_MESSAGE}

    def to_python(self, value: Any) -> Scopes:
        if not value:
            return {}
        try:
            return normalize(value)
        except ScopeError as exc:
            raise ValidationError(str(exc), code="invalid") from exc

    def validate(self, value: Scopes) -> None:
        if self.required and not value:
            raise ValidationError(self.error_messages["required"], code="required")

    def has_changed(self, initial: Any, data: Any) -> bool:
        try:
            return normalize(initial or {}) != self.to_python(data)
        except (ScopeError, ValidationError):
            return True


class OneTimeFormMixin(forms.Form):
    """A random nonce in a hidden field; the admin records it as used before acting, so a double
    submission (double click, reload, back button) creates nothing the second time."""

    form_nonce = forms.CharField(widget=forms.HiddenInput, max_length=64)


EXPIRY_HELP = {
    ExpiryPolicy.NEVER: "Not recommended: time-limited keys force a periodic review.",
}


class KeyGenerateForm(OneTimeFormMixin):
    required_css_class = "required"
    name = forms.CharField(
        max_length=100,
        help_text='A descriptive label, e.g. "Website Form Integration", "BI Tool Access", '
        '"Zapier Connector".',
        widget=forms.TextInput(attrs={"class": "vTextField", "autocomplete": "off"}),
    )
    description = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Purpose and owner of the key.",
        widget=forms.Textarea(attrs={"rows": 3, "class": "vLargeTextField"}),
    )
    expiry_policy = forms.ChoiceField(
        label="Expiration",
        choices=ExpiryPolicy.choices,
        initial=ExpiryPolicy.DAYS_90,
        widget=forms.RadioSelect,
        help_text="Prefer time-limited keys over permanent ones: expiry forces a periodic review.",
    )
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

    field_order = ["name", "description", "expiry_policy", "expiry_date", "scopes"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tomorrow = timezone.localdate() + timedelta(days=1)
        self.fields["expiry_date"].widget.attrs["min"] = tomorrow.isoformat()
        self.fields["expiry_date"].widget.attrs["aria-describedby"] = "id_expiry_date_helptext"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        policy = cleaned.get("expiry_policy")
        custom: date | None = cleaned.get("expiry_date")
        if policy == ExpiryPolicy.CUSTOM:
            try:
                services.compute_expiry(policy, custom)
            except services.KeyValidationError as exc:
                self.add_error("expiry_date", str(exc))
        elif policy:
            cleaned["expiry_date"] = None
        return cleaned


class KeyChangeForm(forms.ModelForm):
    """The key page. Only fields ``services.key_update`` accepts; the admin never saves the model."""

    scopes = ScopeMatrixField(
        label="Permissions",
        widget=ScopeMatrixWidget(show_presets=True),
        help_text="Changing permissions takes effect immediately: the next API request with "
        "this key is evaluated against them.",
    )

    class Meta:
        model = APIKey
        fields = [
            "name",
            "description",
            "scopes",
            "alert_volume_per_hour",
            "alert_error_rate_percent",
            "alert_unused_days",
            "alerts_muted",
            "rate_limit_per_minute",
            "allowed_ips",
            "allowed_origins",
        ]
        labels = {
            "alert_volume_per_hour": "High volume: requests per hour above",
            "alert_error_rate_percent": "Error spike: error rate (%) above",
            "alert_unused_days": "Unused key: days without a request",
            "alerts_muted": "Mute alerts for this key",
            "rate_limit_per_minute": "Rate limit (requests per minute)",
            "allowed_ips": "Allowed IP ranges",
            "allowed_origins": "Allowed browser origins",
        }
        help_texts = {
            "alert_volume_per_hour": "Blank: the default (10,000 per hour).",
            "alert_error_rate_percent": "Blank: the default (10%).",
            "alert_unused_days": "Blank: the default (30 days).",
            "rate_limit_per_minute": "Blank: no per-key limit.",
        }

    def clean_name(self) -> str:
        name = (self.cleaned_data.get("name") or "").strip()
        if not name:
            raise ValidationError("The key needs a name.")
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            raise ValidationError("The name must not contain control characters.")
        return name

    def clean_alert_error_rate_percent(self) -> float | None:
        rate = self.cleaned_data.get("alert_error_rate_percent")
        if rate is not None and not 0 <= rate <= 100:
            raise ValidationError("The error-rate threshold is a percentage between 0 and 100.")
        return rate

    def clean_allowed_ips(self) -> str:
        try:
            return normalize_networks(self.cleaned_data.get("allowed_ips") or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.instance.pk and self.instance.status == "revoked":
            raise ValidationError("This key is revoked; it cannot be edited.")
        return cleaned

    def service_changes(self) -> dict[str, Any]:
        """Keyword arguments for ``services.key_update``."""
        return {f: self.cleaned_data[f] for f in self.Meta.fields if f in self.cleaned_data}


class RotateForm(OneTimeFormMixin):
    grace = forms.ChoiceField(
        label="Grace period",
        choices=[("1h", "1 hour"), ("24h", "24 hours"), ("7d", "7 days")],
        initial="24h",
        widget=forms.RadioSelect,
        help_text="How long the old key keeps working after the new one is issued.",
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
