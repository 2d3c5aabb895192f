"""How ``APIKeyAdmin`` shows a key: the list's columns and the key page's read-only fields (a
mixin; the HTML comes from ``display``)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from ..models import APIKey
from ..models.keys import when_text
from .display import expiry_html, last_call_html, scopes_table, status_badge, when_html


class KeyColumns:
    """The key list's columns."""

    @admin.display(description="Name", ordering="name")
    def name_column(self, obj: APIKey) -> str:
        # Long unbroken names wrap (CSS) and are clamped to a few lines; the tooltip has it all.
        return format_html('<span class="key-name" title="{}">{}</span>', obj.name, obj.name)

    @admin.display(description="Key")
    def key_column(self, obj: APIKey) -> str:
        return format_html('<code class="key-id">{}</code>', obj.display_id)

    @admin.display(description="Created", ordering="created_at")
    def created_column(self, obj: APIKey) -> str:
        return when_html(obj.created_at)

    @admin.display(description="Expires", ordering="expires_at")
    def expires_column(self, obj: APIKey) -> str:
        return expiry_html(obj)

    @admin.display(description="Last used", ordering="last_used_at")
    def last_used_column(self, obj: APIKey) -> str:
        return last_call_html(obj)

    @admin.display(description="Status")
    def status_column(self, obj: APIKey) -> str:
        html = status_badge(obj)
        if getattr(obj, "has_open_alert", False):
            html += mark_safe(' <span class="key-badge key-badge--alert">Alert</span>')
        return html

    @admin.display(description="Requests (24h)")
    def requests_24h_column(self, obj: APIKey) -> str:
        return format_html(
            '<span class="key-number">{}</span>', f"{getattr(obj, 'requests_24h', 0):,}"
        )


class KeyPageFields:
    """The key page's read-only fields."""

    @admin.display(description="Status")
    def status_display(self, obj: APIKey) -> str:
        # Who revoked it goes right after "Revoked", before the rotation badges, so it never
        # reads as if the new key of the rotation had been revoked.
        detail = (
            format_html(
                ' <span class="key-muted">by {} on {}{}</span>{}',
                obj.revoked_by_label or "—",
                when_text(obj.revoked_at),
                f" ({obj.revoke_reason})" if obj.revoke_reason else "",
                " ·" if obj.replaced_by_id else "",
            )
            if obj.revoked_at
            else ""
        )
        return status_badge(obj, detail=detail)

    @admin.display(description="Created")
    def created_display(self, obj: APIKey) -> str:
        return when_html(obj.created_at, inline=True)

    @admin.display(description="Created by")
    def created_by_display(self, obj: APIKey) -> str:
        return obj.created_by_label or (obj.created_by.get_username() if obj.created_by else "—")

    @admin.display(description="Permissions granted by")
    def granted_by_display(self, obj: APIKey) -> str:
        return obj.granted_by_label or "—"

    @admin.display(description="Expires")
    def expires_display(self, obj: APIKey) -> str:
        return format_html(
            "{} <span class='key-muted'>· {}</span>",
            expiry_html(obj, inline=True),
            obj.get_expiry_policy_display(),
        )

    @admin.display(description="Last used")
    def last_used_display(self, obj: APIKey) -> str:
        now = timezone.now()
        stopped = obj.stopped_at(now)
        if obj.last_rejected_call_at(now) is not None:
            # The stored time is the rejected call's; an accepted one was before it stopped.
            return format_html(
                '<span class="key-muted">not since {}, when the key stopped working</span>',
                when_text(stopped),
            )
        return when_html(obj.last_used_at, now, inline=True)

    @admin.display(description="Last rejected call")
    def last_rejected_display(self, obj: APIKey) -> str:
        now = timezone.now()
        rejected = obj.last_rejected_call_at(now)
        if rejected is None:
            return mark_safe('<span class="key-muted">None since it stopped working</span>')
        return when_html(
            rejected, now, inline=True, hint=f"401: the key is {obj.status_at(now).label.lower()}"
        )

    @admin.display(description="Rotation")
    def rotation_display(self, obj: APIKey) -> str:
        parts = []
        if obj.replaced_by_id:
            new = obj.replaced_by
            parts.append(
                format_html(
                    'Rotated: the new key value is <a href="{}"><code class="key-id">{}</code></a>. {}',
                    reverse("admin:keys_apikey_change", args=[new.pk]),
                    new.display_id,
                    _old_key_fate(obj, "This old key"),
                )
            )
        old = APIKey.objects.filter(replaced_by=obj).first()
        if old is not None:
            parts.append(
                format_html(
                    'New key value of a rotation: the old key <a href="{}"><code class="key-id">'
                    "{}</code></a> {}",
                    reverse("admin:keys_apikey_change", args=[old.pk]),
                    old.display_id,
                    _old_key_fate(old, ""),
                )
            )
        if not parts:
            return "Not rotated."
        return format_html_join(mark_safe("<br>"), "{}", ((p,) for p in parts))

    @admin.display(description="Permissions")
    def permissions_table(self, obj: APIKey) -> str:
        # The used / unused marks that render_change_form worked out for this page, if any.
        return scopes_table(obj.scopes, getattr(obj, "scope_usage", None))


def _old_key_fate(old: APIKey, subject: str) -> str:
    """The old key of a rotation in the manual's words: it remains active for the grace period,
    then is automatically revoked (or was revoked before the grace period ended)."""
    ends = when_text(old.grace_ends_at) if old.grace_ends_at else ""
    lead = f"{subject} " if subject else ""
    if old.in_grace:
        return f"{lead}remains active for the grace period, until {ends}; after the grace period, it is automatically revoked."
    if old.revoked_at and old.grace_ends_at and old.revoked_at < old.grace_ends_at:
        return f"{lead}was revoked at {when_text(old.revoked_at)}, before its grace period ended."
    return f"{lead}was automatically revoked after the grace period, at {ends}."


def key_with_actions(*, can_rotate: bool, can_revoke: bool) -> Any:
    """The list's Key column for one request, with Rotate and Revoke under the key on each row
    they apply to, for a person allowed them (the manual: "Find the key to rotate in the list.
    Click Rotate."). Under the key rather than in a column of their own, so the list still fits
    beside the filters at 1280 px."""

    @admin.display(description="Key")
    def key_column(obj: APIKey) -> str:
        now = timezone.now()
        links = []
        if can_rotate and obj.rotation_refusal(now) is None:
            links.append(("rotate", reverse("admin:keys_apikey_rotate", args=[obj.pk]), "Rotate"))
        if can_revoke and obj.revocation_refusal(now) is None:
            label = "Revoke now" if obj.in_grace_at(now) else "Revoke"
            links.append(("revoke", reverse("admin:keys_apikey_revoke", args=[obj.pk]), label))
        actions = format_html_join(
            " ", '<a class="key-row-action key-row-action--{}" href="{}">{}</a>', links
        )
        return format_html(
            '<code class="key-id">{}</code>{}',
            obj.display_id,
            format_html('<span class="key-row-actions">{}</span>', actions) if links else "",
        )

    return key_column
