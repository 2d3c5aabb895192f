"""How a key's status, dates, rotation and permissions are shown in the admin (list and key page).

One date format everywhere: the absolute time in the server's time zone with the zone
("2026-11-27 14:03 UTC", ``keys.models.keys.when_text``), the relative time ("3 hours ago") as
a hint beside or below it and in the tooltip.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

from crm.modules import ACTION_LABELS, ACTIONS, MODULES

from ..models import APIKey, KeyStatus
from ..models.keys import when_text
from ..scopes import describe
from ..usage.insights import ScopeReview

STATUS_CLASSES = {
    KeyStatus.ACTIVE: "active",
    KeyStatus.EXPIRED: "expired",
    KeyStatus.REVOKED: "revoked",
}


def relative(when: datetime, now: datetime | None = None) -> str:
    """ "3 hours ago", "in 2 months", "just now"."""
    now = now or timezone.now()
    if abs(now - when) < timedelta(minutes=1):
        return "just now"
    if when > now:
        return f"in {timeuntil(when, now, depth=1)}"
    return f"{timesince(when, now, depth=1)} ago"


def ago(when: datetime, now: datetime | None = None) -> str:
    """ "just now", "3 minutes ago" (the relative time of a past instant)."""
    return relative(when, now)


def _hint(text: str, inline: bool, css: str = "") -> SafeString:
    if not text:
        return mark_safe("")
    if inline:
        return format_html(' <span class="key-hint {}">({})</span>', css, text)
    return format_html('<br><small class="key-hint {}">{}</small>', css, text)


def _absolute(text: str) -> SafeString:
    """ "2026-11-27 14:03 UTC" that wraps between the date and the time, never inside them."""
    day, _, rest = text.partition(" ")
    return format_html('<span class="nowrap">{}</span> <span class="nowrap">{}</span>', day, rest)


def when_html(
    when: datetime | None,
    now: datetime | None = None,
    *,
    inline: bool = False,
    empty: str = "Never",
    hint: str | None = None,
    hint_css: str = "",
) -> SafeString:
    """An instant as absolute text, with the relative time (or ``hint``) as a hint."""
    if when is None:
        return format_html('<span class="key-muted">{}</span>', empty)
    rel = relative(when, now)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>{}',
        when.isoformat(),
        rel,
        _absolute(when_text(when)),
        _hint(rel if hint is None else hint, inline, hint_css),
    )


def status_badge(
    key: APIKey, now: datetime | None = None, *, detail: SafeString | str = ""
) -> SafeString:
    """The status badge (``detail`` right after it: by whom it was revoked); for a rotated
    pair, which is the old key and which the new key value (both are badged, in the manual's
    words, so two keys of the same name in the list can be told apart)."""
    now = now or timezone.now()
    status = key.status_at(now)
    html = format_html(
        '<span class="key-badge key-badge--{}">{}</span>{}',
        STATUS_CLASSES[status],
        status.label,
        detail,
    )
    if key.replaced_by_id and key.grace_ends_at:
        new_id = key.replaced_by.display_id
        if key.in_grace_at(now):
            html += format_html(
                ' <span class="key-badge key-badge--grace">Old key · grace period</span>'
                ' <small class="key-hint">remains active until {}; new key {}</small>',
                when_text(key.grace_ends_at),
                new_id,
            )
        else:
            html += format_html(
                ' <span class="key-badge key-badge--rotation">Old key</span>'
                ' <small class="key-hint">replaced by the new key {}</small>',
                new_id,
            )
    replaces = getattr(key, "replaces_public_id", None)
    if replaces:
        html += format_html(
            ' <span class="key-badge key-badge--rotation">New key</span>'
            ' <small class="key-hint">old key {}</small>',
            f"icrm_{replaces}…",
        )
    return html


def expiry_html(key: APIKey, now: datetime | None = None, *, inline: bool = False) -> SafeString:
    now = now or timezone.now()
    if key.status_at(now) == KeyStatus.REVOKED:
        # A revoked key never works again: an expiry date would only mislead.
        return format_html(
            '<span class="key-expiry key-expiry--none key-muted" title="{}">—</span>{}',
            "Revoked: the key no longer works, whatever its expiry.",
            _hint("revoked", inline),
        )
    if key.expires_at is None:
        return format_html(
            '<span class="key-expiry key-expiry--never" title="Not recommended">Never</span>{}',
            _hint("not recommended", inline),
        )
    if key.expires_at <= now:
        css, rel = "past", f"expired {relative(key.expires_at, now)}"
    else:
        css = "soon" if key.expires_at - now <= timedelta(days=7) else "later"
        rel = relative(key.expires_at, now)
    day = key.expiry_day()
    text = (
        format_html(
            '<span class="nowrap">{},</span> <span class="nowrap">{}</span>',
            day.isoformat(),
            key.expiry_text().split(", ", 1)[1],
        )
        if day
        else _absolute(key.expiry_text())
    )
    return format_html(
        '<span class="key-expiry key-expiry--{}"><time datetime="{}" title="{}">{}</time>{}</span>',
        css,
        key.expires_at.isoformat(),
        rel,
        text,
        _hint(rel, inline),
    )


def last_call_html(key: APIKey, now: datetime | None = None, *, inline: bool = False) -> SafeString:
    """Last used, without letting refused calls pass for use: a call after the key stopped
    working (revoked, expired, grace over) was rejected, and is said so."""
    now = now or timezone.now()
    rejected = key.last_rejected_call_at(now)
    if rejected is not None:
        status = key.status_at(now).label.lower()
        return when_html(
            rejected,
            now,
            inline=inline,
            hint=f"last call rejected: key {status}",
            hint_css="key-hint--rejected",
        )
    return when_html(key.last_used_at, now, inline=inline)


def _value_text(field: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if field == "scopes" and isinstance(value, dict):
        return describe(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).replace("\n", ", ")
    return text if len(text) <= 80 else text[:79] + "…"


def change_lines(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """An audit entry's change as "Label: before → after" lines, labelled as on the key page
    ("Unused key: days without a request: — → 10"). Only fields that changed."""
    from .forms import KeyChangeForm  # the key page's own labels (forms imports this module)

    before, after = before or {}, after or {}
    labels = {**KeyChangeForm.Meta.labels, "scopes": "Permissions"}
    lines = []
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field), after.get(field)
        if field in before and field in after and old == new:
            continue
        label = labels.get(field) or field.replace("_", " ").capitalize()
        if field in before:
            lines.append(f"{label}: {_value_text(field, old)} → {_value_text(field, new)}")
        else:
            lines.append(f"{label}: {_value_text(field, new)}")
    return lines


def scope_usage(review: ScopeReview, remove_url: str = "") -> dict[str, Any]:
    """What the permission matrix shows of a key's review: each granted permission used or
    "not used in the last N days" (the window, on the mark itself), and the way to remove the
    unused ones (or why not yet). A key younger than the window (with the keys it replaced)
    marks nothing unused, which would mean nothing yet: it is too new to tell, and the note
    says from when it can."""
    refusal = review.removal_refusal()
    too_new = not review.old_enough
    return {
        "used": set(review.used),
        "unused": [] if too_new else review.unused,
        "unused_label": f"not used in the last {review.days} days",
        "days": review.days,
        "lineage": review.keys > 1,
        "too_new": too_new,
        "created": review.judged_from,
        "judged_from": review.judged_from + timedelta(days=review.days),
        "remove_url": remove_url if refusal is None else "",
        "refusal": refusal if review.unused and not too_new else "",
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
                                _mark_html(usage_mark(usage, f"{module.name}:{a}"), usage),
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


def usage_label(usage: dict[str, Any] | None, mark: str) -> str:
    """The words of a mark: "used", or "not used in the last N days"."""
    return usage["unused_label"] if usage and mark == "unused" else mark


def _mark_html(mark: str, usage: dict[str, Any] | None = None) -> str:
    if not mark:
        return ""
    return format_html(
        ' <span class="scope-usage scope-usage--{}">{}</span>', mark, usage_label(usage, mark)
    )
