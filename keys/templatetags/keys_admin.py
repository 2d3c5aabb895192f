"""Template filters of the key admin and the e-mails: ``{% load keys_admin %}``.

One date format everywhere: ``{{ moment|when }}`` (the absolute time with the zone, the relative
time as a hint), ``{{ moment|when_text }}`` (the text alone, for e-mails), ``{{ moment|ago }}``
(the relative time alone).
"""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.safestring import SafeString

from ..admin.display import ago as _ago
from ..admin.display import when_html
from ..models.keys import when_text as _when_text

register = template.Library()


@register.filter
def ago(when: datetime | None) -> str:
    """ "just now", "3 minutes ago", "2 days ago" (the wording of the key list's Last used)."""
    return _ago(when) if when is not None else ""


@register.filter
def when(moment: datetime | None) -> SafeString:
    return when_html(moment, inline=True, empty="—")


@register.filter
def when_text(moment: datetime | None) -> str:
    return _when_text(moment) if moment else "—"
