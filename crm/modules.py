"""The registry of CRM modules that API keys protect, and the actions a key can be granted.

Adding a module is one line in MODULES (plus its model and viewset).

Keys and people share one permission model: a module's actions are the Django permissions of
its model (``view_``, ``add_`` for create, ``change_`` for edit, ``delete_`` and ``export_``,
the last declared in the model's ``Meta.permissions``), and roles are Django groups holding
them. A key's ``contacts:create`` is what a person holding ``crm.add_contact`` may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

ACTIONS: tuple[str, ...] = ("view", "create", "edit", "delete", "export")
ACTION_LABELS = {a: a.capitalize() for a in ACTIONS}
# Key action -> the prefix of its Django permission codename (create <-> add, edit <-> change).
ACTION_PERMISSIONS = {
    "view": "view",
    "create": "add",
    "edit": "change",
    "delete": "delete",
    "export": "export",
}


@dataclass(frozen=True)
class Module:
    name: str  # URL segment and scope name: /api/v1/<name>/, "<name>:view"
    label: str  # shown to admins
    viewset: str  # dotted path of the DRF viewset serving it
    model: str  # "app_label.model_name" of the model whose permissions are its actions

    def permission(self, action: str) -> str:
        """``contacts`` + ``create`` -> ``crm.add_contact`` (as ``user.has_perm`` takes it)."""
        app_label, model_name = self.model.split(".")
        return f"{app_label}.{ACTION_PERMISSIONS[action]}_{model_name}"


MODULES: dict[str, Module] = {
    m.name: m
    for m in (
        Module("contacts", "Contacts", "crm.api.ContactViewSet", "crm.contact"),
        Module("leads", "Leads", "crm.api.LeadViewSet", "crm.lead"),
        Module("opportunities", "Opportunities", "crm.api.OpportunityViewSet", "crm.opportunity"),
    )
}


@cache
def _scopes_by_permission() -> dict[tuple[str, str], tuple[str, str]]:
    out = {}
    for module in MODULES.values():
        for action in ACTIONS:
            app_label, codename = module.permission(action).split(".")
            out[(app_label, codename)] = (module.name, action)
    return out


def scope_of_permission(app_label: str, codename: str) -> tuple[str, str] | None:
    """``("crm", "add_contact")`` -> ``("contacts", "create")``; None for any other permission."""
    return _scopes_by_permission().get((app_label, codename))
