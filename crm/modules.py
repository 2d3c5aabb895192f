"""The registry of CRM modules that API keys protect, and the actions a key can be granted.

Adding a module is one line in MODULES (plus its model and viewset).
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS: tuple[str, ...] = ("view", "create", "edit", "delete", "export")
ACTION_LABELS = {a: a.capitalize() for a in ACTIONS}


@dataclass(frozen=True)
class Module:
    name: str  # URL segment and scope name: /api/v1/<name>/, "<name>:view"
    label: str  # shown to admins
    viewset: str  # dotted path of the DRF viewset serving it


MODULES: dict[str, Module] = {
    m.name: m
    for m in (
        Module("contacts", "Contacts", "crm.api.ContactViewSet"),
        Module("leads", "Leads", "crm.api.LeadViewSet"),
        Module("opportunities", "Opportunities", "crm.api.OpportunityViewSet"),
    )
}
