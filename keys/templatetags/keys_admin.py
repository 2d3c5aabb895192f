"""Template filters of the key admin: ``{% load keys_admin %}``."""

from __future__ import annotations

from datetime import datetime

from django import template

from ..admin.display import ago as _ago

register = template.Library()


@register.filter
def ago(when: datetime | None) -> str:
    """ "just now", "3 minutes ago", "2 days ago" (the wording of the key list's Last used)."""
    return _ago(when) if when is not None else ""
