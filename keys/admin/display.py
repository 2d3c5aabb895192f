"""How a key's status, expiry, age and permissions are shown in the admin (list and key page)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timesince import timesince, timeuntil

from crm.modules import ACTION_LABELS, ACTIONS, MODULES

from ..models import APIKey, KeyStatus
from ..usage.insights import ScopeReview

STATUS_CLASSES = {
    KeyStatus.ACTIVE: "active",
    KeyStatus.EXPIRED: "expired",
    KeyStatus.REVOKED: "revoked",
}


def status_badge(key: APIKey, now: Any = None) -> str:
    now = now or timezone.now()
    status = key.status_at(now)
    html = format_html(
        '<span class="key-badge key-badge--{}">{}</span>', STATUS_CLASSES[status], status.label
    )
    if key.in_grace_at(now):
        html += format_html(
            ' <span class="key-badge key-badge--grace" title="Replaced by rotation; it works until'
            ' {}">Rotated · grace until {}</span>',
            timezone.localtime(key.grace_ends_at).strftime("%Y-%m-%d %H:%M %Z"),
            timezone.localtime(key.grace_ends_at).strftime("%b %d %H:%M"),
        )
    return html


def ago(when: Any, now: Any = None) -> str:
    now = now or timezone.now()
    if now - when < timedelta(minutes=1):
        return "just now"
    return f"{timesince(when, now, depth=1)} ago"


def expiry_html(key: APIKey, now: Any = None) -> str:
    now = now or timezone.now()
    if key.expires_at is None:
        return mark_safe(
            '<span class="key-expiry key-expiry--never" title="Not recommended">Never</span>'
        )
    when = timezone.localtime(key.expires_at).strftime("%Y-%m-%d")
    if key.expires_at <= now:
        return format_html(
            '<span class="key-expiry key-expiry--past"><span class="nowrap">{}</span><br>'
            "<small>expired {}</small></span>",
            when,
            ago(key.expires_at, now),
        )
    css = "soon" if key.expires_at - now <= timedelta(days=7) else "later"
    return format_html(
        '<span class="key-expiry key-expiry--{}"><span class="nowrap">{}</span><br>'
        '<small class="nowrap">in {}</small></span>',
        css,
        when,
        timeuntil(key.expires_at, now, depth=1),
    )


def scope_usage(review: ScopeReview, remove_url: str = "") -> dict[str, Any]:
    """What the permission matrix shows of a key's review: each granted permission used or
    unused, the window, and the way to remove the unused ones (or why not yet)."""
    refusal = review.removal_refusal()
    return {
        "used": set(review.used),
        "unused": review.unused,
        "days": review.days,
        "lineage": review.keys > 1,
        "remove_url": remove_url if refusal is None else "",
        "refusal": refusal if review.unused else "",
    }


def usage_mark(usage: dict[str, Any] | None, scope: str) -> str:
    """ "used", "unused" or "" (not granted, or no usage shown)."""
    if not usage:
        return ""
    if scope in usage["used"]:
        return "used"
    return "unused" if scope in usage["unused"] else ""


def scopes_table(scopes: dict[str, list[str]], usage: dict[str, Any] | None = None) -> str:
    """A read-only permission matrix (revoked keys, users without change permission), each
    granted permission marked used or unused when ``usage`` is given."""
    head = format_html_join("", '<th scope="col">{}</th>', ((ACTION_LABELS[a],) for a in ACTIONS))
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th>{}</tr>',
        (
            (
                module.label,
                format_html_join(
                    "",
                    "{}",
                    (
                        (
                            format_html(
                                '<td class="granted">✓<span class="visually-hidden"> yes</span>'
                                "{}</td>",
                                _mark_html(usage_mark(usage, f"{module.name}:{a}")),
                            )
                            if a in scopes.get(module.name, ())
                            else mark_safe(
                                '<td class="denied">—<span class="visually-hidden"> no</span></td>'
                            ),
                        )
                        for a in ACTIONS
                    ),
                ),
            )
            for module in MODULES.values()
        ),
    )
    table = format_html(
        '<table class="scope-matrix scope-matrix--readonly"><thead><tr><td></td>{}</tr></thead>'
        "<tbody>{}</tbody></table>",
        head,
        rows,
    )
    if usage:
        table += render_to_string("keys/widgets/scope_usage_note.html", {"usage": usage})
    return table


def _mark_html(mark: str) -> str:
    if not mark:
        return ""
    return format_html(' <span class="scope-usage scope-usage--{}">{}</span>', mark, mark)
