"""The CRM data in the admin (for looking at what the API serves).

The admin honours the permissions a key is scoped with (crm.modules): view, add, change and
delete are Django's own; exporting the selected rows as CSV needs the model's ``export_``
permission, as ``GET /api/v1/<module>/export/`` needs the key's ``export`` scope.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse

from crm_keys.adminguard import GuardedChangelistMixin
from crm_keys.csvstream import csv_lines, inert_cell

from .api import ContactSerializer, LeadSerializer, OpportunitySerializer
from .models import Contact, Lead, Opportunity


class CRMModelAdmin(GuardedChangelistMixin, admin.ModelAdmin):
    actions = ["export_selected"]
    export_fields: list[str] = []  # the columns of the API's CSV export

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"{self.opts.app_label}.export_{self.opts.model_name}")

    @admin.action(
        permissions=["export"], description="Export selected %(verbose_name_plural)s as CSV"
    )
    def export_selected(self, request: HttpRequest, queryset: QuerySet) -> StreamingHttpResponse:
        relations = {f.name for f in self.opts.fields if f.is_relation}
        columns = [f"{f}_id" if f in relations else f for f in self.export_fields]
        rows = queryset.order_by("pk").values_list(*columns).iterator(chunk_size=2000)
        response = StreamingHttpResponse(
            csv_lines(self.export_fields, ([inert_cell(v) for v in row] for row in rows)),
            content_type="text/csv; charset=utf-8",
        )
        name = self.opts.verbose_name_plural.replace(" ", "-")
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response


@admin.register(Contact)
class ContactAdmin(CRMModelAdmin):
    list_display = ["last_name", "first_name", "email", "company", "city", "country", "created_at"]
    list_filter = ["country"]
    search_fields = ["first_name", "last_name", "email", "company"]
    export_fields = ContactSerializer.Meta.fields


@admin.register(Lead)
class LeadAdmin(CRMModelAdmin):
    list_display = ["__str__", "email", "source", "status", "estimated_value", "created_at"]
    list_filter = ["status", "source"]
    search_fields = ["first_name", "last_name", "email", "company"]
    raw_id_fields = ["contact"]
    export_fields = LeadSerializer.Meta.fields


@admin.register(Opportunity)
class OpportunityAdmin(CRMModelAdmin):
    list_display = ["name", "stage", "amount", "currency", "probability", "close_date"]
    list_filter = ["stage", "currency"]
    search_fields = ["name"]
    raw_id_fields = ["contact", "lead"]
    export_fields = OpportunitySerializer.Meta.fields
