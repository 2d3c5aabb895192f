"""The permission matrix: one form field whose widget is a module x action table of labelled
checkboxes with row and column toggles, the manual's presets and "Same as role…" (Generate page
and key page). Rendered through ``FORM_RENDERER = TemplatesSetting`` from
``keys/widgets/scope_matrix.html``.

The form tells the widget what the person may grant (``grantable``, the privilege ceiling): a
permission they do not hold is shown disabled unless the key already has it (removing is
allowed), and presets and roles fill only what they hold, saying what was left out. The
services enforce the ceiling whatever the browser sends."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from crm.modules import ACTION_LABELS, ACTIONS, MODULES

from ..models.keys import NO_PERMISSION_MESSAGE
from ..scopes import PRESETS, ScopeError, Scopes, beyond, describe, normalize, within
from .display import usage_label, usage_mark


class ScopeMatrixWidget(forms.Widget):
    """A table of checkboxes named ``<name>__<module>__<action>`` with row and column toggles."""

    template_name = "keys/widgets/scope_matrix.html"

    class Media:
        css = {"all": ("keys/admin.css",)}
        js = ("keys/scope_matrix.js",)

    def __init__(self, attrs: dict[str, Any] | None = None, *, show_presets: bool = True) -> None:
        super().__init__(attrs)
        self.show_presets = show_presets
        self.grantable: Scopes | None = None  # None: anything (no ceiling known)
        self.roles: dict[str, Scopes] = {}  # "Same as role…": group name -> its scopes
        # On the key page: which granted permissions requests used (display.scope_usage).
        self.usage: dict[str, Any] | None = None

    def _capped(self, scopes: Scopes) -> tuple[Scopes, str]:
        """``scopes`` within the ceiling, and what was left out (as text)."""
        if self.grantable is None:
            return scopes, ""
        left_out = beyond(scopes, self.grantable)
        return within(scopes, self.grantable), describe(left_out) if left_out else ""

    def _choice(self, scopes: Scopes, **extra: Any) -> dict[str, Any]:
        capped, left_out = self._capped(scopes)
        return {**extra, "scopes_json": json.dumps(capped), "capped": left_out}

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
        grantable = self.grantable
        for module in MODULES.values():
            granted = set(scopes.get(module.name, ()))
            allowed = set(grantable.get(module.name, ())) if grantable is not None else None
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
                            "disabled": allowed is not None
                            and action not in allowed
                            and action not in granted,
                            "usage": usage_mark(self.usage, f"{module.name}:{action}"),
                            "usage_label": usage_label(
                                self.usage, usage_mark(self.usage, f"{module.name}:{action}")
                            ),
                        }
                        for action in ACTIONS
                    ],
                }
            )
        context.update(
            {
                "matrix_id": base_id,
                "usage": self.usage,
                "actions": [{"name": a, "label": ACTION_LABELS[a]} for a in ACTIONS],
                "rows": rows,
                "presets": [
                    self._choice(
                        p.scopes(),
                        slug=p.slug,
                        label=p.label,
                        description=p.description,
                        warning=p.warning,
                    )
                    for p in PRESETS.values()
                ]
                if self.show_presets
                else [],
                "roles": [self._choice(scopes, name=name) for name, scopes in self.roles.items()]
                if self.show_presets
                else [],
                "has_ceiling": any(c["disabled"] for r in rows for c in r["cells"]),
            }
        )
        return context

    def id_for_label(self, id_: str) -> str:
        # The matrix is a table, not one control; its caption names it. Each checkbox has its
        # own <label>.
        return ""


class ScopeMatrixField(forms.Field):
    widget = ScopeMatrixWidget
    # The model's own message for a key without permissions: one wording everywhere.
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
