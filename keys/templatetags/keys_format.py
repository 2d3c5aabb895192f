"""Template filters for the admin's one date format: ``{{ moment|when }}`` (absolute time with
the zone, the relative time as a hint) and ``{{ moment|when_text }}`` (the text alone)."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.safestring import SafeString

from ..admin.display import when_html
from ..models.keys import when_text as _when_text

register = template.Library()


@register.filter
def when(moment: datetime | None) -> SafeString:
    return when_html(moment, inline=True, empty="—")


@register.filter
def when_text(moment: datetime | None) -> str:
    return _when_text(moment) if moment else "—"
