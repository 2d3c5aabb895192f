"""The audit log in the admin: read-only for everyone, superusers included.

Entries are written only by ``audit.services.audit_record``; here they can be listed, filtered
(by action, actor, date and key) and read, never added, changed or deleted.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from crm_keys.adminguard import BadFilterValue, GuardedChangelistMixin
from keys.crypto import display_id, public_id_from_ref

from .models import AuditEntry


class ReadOnlyAdminMixin:
    """Viewable, never added, changed or deleted through the admin, by anyone (superusers
    included): for records the system writes, such as audit entries and alerts."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def key_number(value: str) -> int:
    """``?key_id=`` as the key page links it: a key's number (ASCII digits only: "²" is a
    digit to ``str.isdigit`` but not to ``int``), within the column's range."""
    if not (value.isascii() and value.isdigit() and len(value) <= 18):
        raise BadFilterValue("key_id", "expected a key number, as in ?key_id=42.")
    return int(value)


class ActorFilter(admin.SimpleListFilter):
    title = "actor"
    parameter_name = "actor"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        labels = (
            AuditEntry.objects.order_by("actor_label")
            .values_list("actor_label", flat=True)
            .distinct()[:50]
        )
        return [(label, label) for label in labels]

    def check_value(self) -> str | None:
        # The sidebar lists the first 50 actors only; any actor of the log is a fine value.
        if AuditEntry.objects.filter(actor_label=self.value()).exists():
            return None
        return "no audit entry has this actor (a user name, or “system” for the jobs)."

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value():
            return queryset.filter(actor_label=self.value())
        return queryset


class KeyFilter(admin.SimpleListFilter):
    """``?key_id=<pk>`` (the key page links here) or ``?key_public_id=<public id>``."""

    title = "key"
    parameter_name = "key_id"

    def __init__(self, request: HttpRequest, params: dict, model: Any, model_admin: Any) -> None:
        # The second parameter is ours too (not left to the changelist as a raw field lookup).
        public_id = params.pop("key_public_id", [""])[-1]
        super().__init__(request, params, model, model_admin)
        if public_id:
            self.used_parameters["key_public_id"] = public_id

    def expected_parameters(self) -> list[str]:
        return ["key_id", "key_public_id"]

    def has_output(self) -> bool:
        # Shown (and applied) whenever a key is selected; there is no list of every key.
        return bool(self.used_parameters) or super().has_output()

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # Only the selected key: listing every key ever made would not fit a sidebar.
        value = self.value()
        if not value:
            return []
        entry = AuditEntry.objects.filter(key_id=key_number(value)).order_by("-seq").first()
        if entry is None:
            return [(value, f"Key #{value}")]
        return [(value, f"{entry.key_name} ({display_id(entry.key_public_id)})")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value:
            queryset = queryset.filter(key_id=key_number(value))
        public_id = public_id_from_ref(self.used_parameters.get("key_public_id", ""))
        if public_id:
            queryset = queryset.filter(key_public_id=public_id)
        return queryset


def _pretty(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        # Scopes and similar: one "module: action, action" line each, not a JSON tree.
        if not value:
            return "(none)"
        return "\n".join(f"{k}: {', '.join(map(str, v))}" for k, v in value.items())
    if isinstance(value, (dict, list)):
        return json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
    return str(value)


@admin.register(AuditEntry)
class AuditEntryAdmin(GuardedChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["time_column", "actor_label", "action_column", "key_column", "ip"]
    list_display_links = ["time_column"]
    list_filter = ["action", ActorFilter, ("created_at", admin.DateFieldListFilter), KeyFilter]
    search_fields = ["key_name", "key_public_id", "=key_public_id", "actor_label", "message"]
    search_help_text = "Search by key name or public id, actor or message."
    date_hierarchy = "created_at"
    ordering = ["-seq"]
    list_per_page = 100
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["time_column", "action_column", "actor_label", "ip", "user_agent"]}),
        ("Key", {"fields": ["key_column", "message"]}),
        ("Change", {"fields": ["changes"]}),
        (
            "Integrity",
            {"classes": ["collapse"], "fields": ["seq", "prev_hash", "entry_hash", "mac"]},
        ),
    ]

    class Media:
        css = {"all": ("keys/admin.css",)}
        js = ("keys/search_guard.js",)  # a pasted full key is cut to its public id

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        # Five columns and the filters need the width: the breadcrumbs lead everywhere else.
        context = {"title": "Audit log", "is_nav_sidebar_enabled": False}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    @admin.display(description="Time", ordering="seq")
    def time_column(self, obj: AuditEntry) -> str:
        # The audit log's one format: to the second, with the zone (list and entry alike).
        local = timezone.localtime(obj.created_at)
        return format_html(
            '<time datetime="{}"><span class="nowrap">{}</span> <span class="nowrap">{} {}</span></time>',
            local.isoformat(),
            local.strftime("%Y-%m-%d"),
            local.strftime("%H:%M:%S"),
            local.tzname(),
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        return super().get_search_results(request, queryset, public_id_from_ref(search_term))

    @admin.display(description="Action", ordering="action")
    def action_column(self, obj: AuditEntry) -> str:
        return format_html(
            '<span class="audit-action audit-action--{}">{}</span>',
            obj.action,
            obj.get_action_display(),
        )

    @admin.display(description="Key", ordering="key_name")
    def key_column(self, obj: AuditEntry) -> str:
        if not obj.key_public_id:
            return "—"
        label = format_html(
            '<span class="key-name" title="{}">{}</span> <code class="key-id">{}</code>',
            obj.key_name,
            obj.key_name,
            display_id(obj.key_public_id),
        )
        try:
            url = reverse("admin:keys_apikey_change", args=[obj.key_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="Before / after")
    def changes(self, obj: AuditEntry) -> str:
        before = obj.before or {}
        after = obj.after or {}
        if not before and not after:
            return "—"
        fields = list(dict.fromkeys([*before, *after]))
        rows = format_html_join(
            "",
            '<tr class="{}"><th scope="row">{}</th><td class="before">{}</td><td class="after">{}</td></tr>',
            (
                (
                    "changed" if before.get(f) != after.get(f) and f in before else "",
                    f.replace("_", " ").capitalize(),
                    _pretty(before.get(f)) if f in before else "",
                    _pretty(after.get(f)) if f in after else "",
                )
                for f in fields
            ),
        )
        return format_html(
            '<table class="audit-diff"><thead><tr><th scope="col">Field</th>'
            '<th scope="col">Before</th><th scope="col">After</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            rows,
        )
