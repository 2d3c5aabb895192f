"""Admin > Alerts: raised and resolved by the background jobs, read here."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from audit.admin import ReadOnlyAdminMixin
from crm_keys.adminguard import GuardedChangelistMixin

from ..models import Alert


@admin.register(Alert)
class AlertAdmin(GuardedChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Alerts are raised and resolved by the background jobs; admins read them here."""

    list_display = ["kind", "key_link", "what_happened", "opened_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter), "opened_at"]
    search_fields = ["key__name", "key__public_id"]
    list_select_related = ["key"]
    date_hierarchy = "opened_at"

    @admin.display(description="Key", ordering="key__name")
    def key_link(self, obj: Alert) -> str:
        return format_html(
            '<a href="{}">{}</a> <code class="key-id">{}</code>',
            reverse("admin:keys_apikey_change", args=[obj.key_id]),
            obj.key.name,
            obj.key.display_id,
        )

    @admin.display(description="What happened")
    def what_happened(self, obj: Alert) -> str:
        return obj.text
