"""Scopes: which actions a key may perform on which CRM module.

Stored on the key as ``{"contacts": ["view", "create"], ...}`` in module and action order.
Written on the command line as ``module:action,action`` and chosen in the admin from a
module x action matrix, one of the manual's presets or a role (a Django group).

A scope is a Django permission (``contacts:create`` is ``crm.add_contact``, see crm.modules),
so what a person holds is a set of scopes too (``held_by``), and the privilege ceiling (a
person grants a key only what they hold) is a difference of two sets (``beyond``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from crm.modules import ACTIONS, MODULES, scope_of_permission

Scopes = dict[str, list[str]]


class ScopeError(ValueError):
    pass


@dataclass(frozen=True)
class Preset:
    slug: str  # as on the command line: --preset website-form
    label: str  # as in the manual
    description: str
    warning: str = ""

    def scopes(self) -> Scopes:
        return PRESET_SCOPES[self.slug]()


PRESET_SCOPES = {
    "website-form": lambda: {"contacts": ["create"]},
    "bi-tool": lambda: {m: ["view", "export"] for m in MODULES},
    "marketing": lambda: {"leads": ["view", "create", "edit"]},
    "full": lambda: {m: list(ACTIONS) for m in MODULES},
}

PRESETS: dict[str, Preset] = {
    p.slug: p
    for p in (
        Preset("website-form", "Website contact form", "Contacts: Create only"),
        Preset("bi-tool", "BI/reporting tool", "All modules: View + Export only"),
        Preset("marketing", "Marketing automation", "Leads: View + Create + Edit"),
        Preset(
            "full",
            "Full integration",
            "All modules: All actions",
            warning="Use sparingly: this key can read, change, delete and export everything.",
        ),
    )
}


def normalize(scopes: Mapping[str, Iterable[str]]) -> Scopes:
    """Validate and order scopes; drop modules with no action. Raises ScopeError."""
    out: Scopes = {}
    for module, actions in scopes.items():
        if module not in MODULES:
            raise ScopeError(f"Unknown module {module!r}. Modules: {', '.join(MODULES)}.")
        actions = set(actions)
        unknown = actions - set(ACTIONS)
        if unknown:
            raise ScopeError(
                f"Unknown action {sorted(unknown)[0]!r} for {module}. Actions: {', '.join(ACTIONS)}."
            )
        if actions:
            out[module] = [a for a in ACTIONS if a in actions]
    return {m: out[m] for m in MODULES if m in out}


def parse_scope_args(values: Iterable[str]) -> Scopes:
    """``["contacts:view,create", "leads:view"]`` -> scopes. Raises ScopeError."""
    merged: dict[str, set[str]] = {}
    for value in values:
        module, sep, actions = value.partition(":")
        module = module.strip()
        if not sep or not module or not actions.strip():
            raise ScopeError(
                f"Scope {value!r} is not of the form module:action[,action] "
                "(e.g. contacts:view,create)."
            )
        merged.setdefault(module, set()).update(a.strip() for a in actions.split(",") if a.strip())
    return normalize(merged)


def describe(scopes: Mapping[str, Iterable[str]]) -> str:
    """Human summary: ``Contacts: View, Create · Leads: View``."""
    if not scopes:
        return "No permissions"
    return " · ".join(
        f"{MODULES[m].label if m in MODULES else m}: {', '.join(a.capitalize() for a in actions)}"
        for m, actions in scopes.items()
    )


def held_by(user: Any) -> Scopes:
    """The scopes whose permissions ``user`` holds, directly or through a group (an active
    superuser holds them all; an inactive user none)."""
    return normalize(
        {m: [a for a in ACTIONS if user.has_perm(MODULES[m].permission(a))] for m in MODULES}
    )


def role_scopes() -> dict[str, Scopes]:
    """Every role (Django group) by name, with the scopes of its CRM permissions (one query)."""
    from django.contrib.auth.models import Group

    granted: dict[str, dict[str, set[str]]] = {
        name: {} for name in Group.objects.order_by("name").values_list("name", flat=True)
    }
    rows = Group.permissions.through.objects.values_list(
        "group__name", "permission__content_type__app_label", "permission__codename"
    )
    for name, app_label, codename in rows:
        scope = scope_of_permission(app_label, codename)
        if scope:
            granted[name].setdefault(scope[0], set()).add(scope[1])
    return {name: normalize(scopes) for name, scopes in granted.items()}


def beyond(wanted: Mapping[str, Iterable[str]], held: Mapping[str, Iterable[str]]) -> Scopes:
    """The part of ``wanted`` not in ``held`` (what a grantor lacks, or what was added)."""
    return normalize(
        {m: [a for a in actions if a not in set(held.get(m, ()))] for m, actions in wanted.items()}
    )


def within(wanted: Mapping[str, Iterable[str]], held: Mapping[str, Iterable[str]]) -> Scopes:
    """The part of ``wanted`` that is in ``held`` (a preset capped by the ceiling)."""
    return normalize(
        {m: [a for a in actions if a in set(held.get(m, ()))] for m, actions in wanted.items()}
    )
