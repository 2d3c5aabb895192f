"""The CRM REST API: one viewset per module, each guarded by the key's scopes."""

from __future__ import annotations

from typing import Any

import django_filters
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from crm_keys.csvstream import csv_lines
from keys.api.views import RouteMethodsFirst

from .filters import DayFilter, IdFilter, InstantFilter
from .models import Contact, Lead, Opportunity
from .serializers import ContactSerializer, LeadSerializer, OpportunitySerializer

# --- Filters ----------------------------------------------------------------------------------


CREATED_AFTER = (
    "Created at or after this time (ISO 8601, e.g. 2026-03-01T00:00:00Z; UTC without an offset)."
)


CREATED_BEFORE = (
    "Created before this time (ISO 8601, e.g. 2026-04-01T00:00:00Z; UTC without an offset)."
)
LINKED_CONTACT = "Linked to this contact (its id). An id no contact has matches nothing."


class ContactFilter(django_filters.FilterSet):
    company = django_filters.CharFilter(
        lookup_expr="icontains", help_text="Company contains this text (case-insensitive)."
    )
    email = django_filters.CharFilter(
        lookup_expr="iexact", help_text="E-mail address, exactly (case-insensitive)."
    )
    country = django_filters.CharFilter(
        lookup_expr="iexact", help_text="Country, exactly (case-insensitive)."
    )
    created_after = InstantFilter(
        field_name="created_at", lookup_expr="gte", help_text=CREATED_AFTER
    )
    created_before = InstantFilter(
        field_name="created_at", lookup_expr="lt", help_text=CREATED_BEFORE
    )

    class Meta:
        model = Contact
        fields = ["company", "email", "country"]


class LeadFilter(django_filters.FilterSet):
    company = django_filters.CharFilter(
        lookup_expr="icontains", help_text="Company contains this text (case-insensitive)."
    )
    min_value = django_filters.NumberFilter(
        field_name="estimated_value", lookup_expr="gte", help_text="Estimated value at least this."
    )
    max_value = django_filters.NumberFilter(
        field_name="estimated_value", lookup_expr="lte", help_text="Estimated value at most this."
    )
    created_after = InstantFilter(
        field_name="created_at", lookup_expr="gte", help_text=CREATED_AFTER
    )
    created_before = InstantFilter(
        field_name="created_at", lookup_expr="lt", help_text=CREATED_BEFORE
    )
    contact = IdFilter(field_name="contact", help_text=LINKED_CONTACT)

    class Meta:
        model = Lead
        fields = ["status", "source", "company", "contact"]


class OpportunityFilter(django_filters.FilterSet):
    min_amount = django_filters.NumberFilter(
        field_name="amount", lookup_expr="gte", help_text="Amount at least this."
    )
    max_amount = django_filters.NumberFilter(
        field_name="amount", lookup_expr="lte", help_text="Amount at most this."
    )
    close_after = DayFilter(
        field_name="close_date",
        lookup_expr="gte",
        help_text="Closes on or after this date (YYYY-MM-DD).",
    )
    close_before = DayFilter(
        field_name="close_date",
        lookup_expr="lte",
        help_text="Closes on or before this date (YYYY-MM-DD).",
    )

    contact = IdFilter(field_name="contact", help_text=LINKED_CONTACT)
    lead = IdFilter(field_name="lead", help_text="Linked to this lead (its id).")
    currency = django_filters.CharFilter(
        lookup_expr="iexact", help_text="Currency code, e.g. USD (case-insensitive)."
    )

    class Meta:
        model = Opportunity
        fields = ["stage", "contact", "lead", "currency"]


# --- Viewsets ---------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_GUARD_HELP = (
    "on (default): a cell starting with = + - @, a tab or a carriage return gets a leading ' "
    "so a spreadsheet shows it as text instead of running it as a formula (a phone number "
    "+1-555-… becomes '+1-555-…). off: every value exactly as stored, for programs that read "
    "the CSV; never open such a file in a spreadsheet."
)


def _guarded_cell(value: Any) -> Any:
    # Spreadsheet formula injection (CSV injection): a cell starting with = + - @ is made inert.
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _plain_cell(value: Any) -> Any:
    return "" if value is None else value


MSG_EXPORT_NOT_ACCEPTABLE = (
    "An export is CSV (text/csv): send 'Accept: text/csv' (or */*, text/*, or no Accept header)."
)
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"


def accepts_csv(request: Request) -> bool:
    """No Accept header (or an empty one), or one that admits text/csv (Django's matching:
    q-values, wildcards, parameters)."""
    if not request.META.get("HTTP_ACCEPT", "").strip():
        return True
    return request._request.accepts(CSV_MEDIA_TYPE)


def formula_guard(request: Request) -> bool:
    """``?formula_guard=on|off`` (default on); anything else is a 400 naming the parameter."""
    value = request.query_params.get("formula_guard", "on")
    if value not in ("on", "off"):
        raise serializers.ValidationError(
            {"formula_guard": [f"Use on or off. {FORMULA_GUARD_HELP}"]}
        )
    return value == "on"


class CRMViewSet(RouteMethodsFirst, viewsets.ModelViewSet):
    # List, retrieve, create, update, delete and export (CSV) for one CRM module. key_module ties
    # the viewset to a module of crm.modules.MODULES; the scope permission maps the viewset
    # action to the key action (list/retrieve -> view, update -> edit, ...). The API docs are
    # written in keys/api/schema.py (a docstring here would become every operation's text).

    key_module: str = ""
    key_action: str | None = (
        None  # set per extra action (export); others map from the viewset action
    )
    lookup_url_kwarg = "id"
    lookup_value_regex = r"[0-9]+"
    ordering = ["id"]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        if self.action == "export" and not force:
            # The export's answer is CSV (a StreamingHttpResponse, no renderer): the Accept
            # header must admit text/csv. Its errors (400, 401, 403...) are JSON like every
            # error of the API, so JSON is the renderer DRF is given.
            if not accepts_csv(request):
                raise exceptions.NotAcceptable(MSG_EXPORT_NOT_ACCEPTABLE)
            return JSONRenderer(), JSONRenderer.media_type
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            # ``?format=<anything>`` names no renderer here (DRF answers 404 "no route"): the
            # response is JSON, and on a list or export ``format`` is refused below, after the
            # key is checked, as the undocumented parameter it is.
            return super().perform_content_negotiation(request, force=True)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # the key, its permission, content type
        if self.action in ("list", "export"):
            self._refuse_unknown_parameters(request)

    def accepted_query_parameters(self) -> list[str]:
        """What a list or export takes (the schema documents exactly these): its filters,
        search and ordering, plus paging on the list and the formula guard on the export."""
        names = [*self.filterset_class.base_filters, "search", "ordering"]
        if self.action == "list":
            names += [self.paginator.page_query_param, self.paginator.page_size_query_param]
        else:
            names.append("formula_guard")
        return names

    def _refuse_unknown_parameters(self, request: Request) -> None:
        # A misspelt filter (?serch=acme) silently ignored reads as "no such rows" or "no
        # filter": refused, naming what is accepted.
        accepted = self.accepted_query_parameters()
        unknown = [name for name in request.query_params if name not in accepted]
        if unknown:
            message = f"Unknown query parameter. This endpoint accepts: {', '.join(accepted)}."
            raise serializers.ValidationError({name[:100]: [message] for name in unknown[:20]})
        # Each takes one value: repeated, Django would silently use the last one.
        repeated = [
            name for name in request.query_params if len(request.query_params.getlist(name)) > 1
        ]
        if repeated:
            message = "Given more than once: give this parameter once."
            raise serializers.ValidationError({name: [message] for name in repeated})

    @extend_schema(
        responses={(200, "text/csv"): OpenApiTypes.STR},
        parameters=[
            OpenApiParameter(
                "formula_guard",
                str,
                enum=["on", "off"],
                default="on",
                description=FORMULA_GUARD_HELP,
            )
        ],
    )
    @action(detail=False, methods=["get"], key_action="export")
    def export(self, request: Request) -> StreamingHttpResponse:
        """All rows matching the same filters as the list, as CSV, streamed."""
        cell = _guarded_cell if formula_guard(request) else _plain_cell
        queryset = self.filter_queryset(self.get_queryset())
        fields = list(self.get_serializer_class().Meta.fields)
        columns = queryset.values_list(
            *[f if f not in ("contact", "lead") else f"{f}_id" for f in fields]
        )
        # The query's first row, before the status line: a value the database refuses or a
        # database that is down is still a JSON 4xx/503, never a 200 with a cut-off file. (A
        # plain LIMIT 1 query: the stream's own cursor opens only when the stream is read.)
        list(columns[:1])
        rows = columns.iterator(chunk_size=2000)
        response = StreamingHttpResponse(
            csv_lines(fields, ([cell(v) for v in row] for row in rows)),
            content_type=CSV_MEDIA_TYPE,
        )
        response["Content-Disposition"] = f'attachment; filename="{self.key_module}.csv"'
        return response


class ContactViewSet(CRMViewSet):
    key_module = "contacts"
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    search_fields = ["first_name", "last_name", "email", "company"]
    ordering_fields = ["id", "last_name", "company", "created_at"]


class LeadViewSet(CRMViewSet):
    key_module = "leads"
    queryset = Lead.objects.all()
    serializer_class = LeadSerializer
    filterset_class = LeadFilter
    search_fields = ["first_name", "last_name", "email", "company"]
    ordering_fields = ["id", "created_at", "estimated_value", "status"]


class OpportunityViewSet(CRMViewSet):
    key_module = "opportunities"
    queryset = Opportunity.objects.all()
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    search_fields = ["name"]
    ordering_fields = ["id", "amount", "close_date", "created_at", "stage"]
