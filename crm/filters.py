"""Filters, search and ordering for the CRM lists and exports.

Search and ordering are strict about their input: a value the API cannot honour is a 400 naming
the parameter, never silently ignored (DRF's own filters drop unknown ordering fields) nor
passed to the database (PostgreSQL refuses NUL in text).

The filter backend is django-filter's own, minus its cost on the requests that name no filter
(most list calls, and every detail call: DRF filters the queryset of ``get_object`` too).
Building a FilterSet deep-copies every filter and builds a form class, about a fifth of an API
request; with no filter parameter the FilterSet returns the queryset unchanged anyway, so it is
skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import django_filters
from django import forms
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

MAX_SEARCH_LENGTH = 200

DATETIME_FORMAT = (
    "An ISO 8601 date and time between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, "
    "e.g. 2026-03-01T00:00:00Z (a time without an offset is UTC)"
)
DATE_FORMAT = "A date as YYYY-MM-DD between 0001-01-01 and 9999-12-31, e.g. 2026-03-01"


def _got(value: Any) -> str:
    return f"; got {str(value)[:40]!r}." if value not in (None, "") else "."


class _InstantField(IsoDateTimeField):
    """An ISO 8601 instant that Python and the database can hold in UTC. An offset can push a
    valid-looking value past year 1 or 9999 (``0001-01-01T00:00:00+14:00``), which overflowed
    in the time-zone conversion of the query: refused here, with the expected form."""

    def to_python(self, value: Any) -> datetime | None:
        try:
            parsed = super().to_python(value)
            if parsed is not None:
                parsed.astimezone(UTC)
        except (forms.ValidationError, OverflowError, ValueError):
            raise forms.ValidationError(DATETIME_FORMAT + _got(value), code="invalid") from None
        return parsed


class _DayField(forms.DateField):
    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except (forms.ValidationError, OverflowError, ValueError):
            raise forms.ValidationError(DATE_FORMAT + _got(value), code="invalid") from None


ID_FORM = "A record id: a whole number"
_ID_RANGE = (-(2**63), 2**63 - 1)  # what a 64-bit database column holds


class _IdField(forms.IntegerField):
    """A record id: a whole number (``1.5`` and ``1e3`` are refused), within what the database
    compares. An id no row has is simply no match (an empty list), never "Select a valid
    choice", which told a key allowed only one module which ids exist in another."""

    def to_python(self, value: Any) -> int | None:
        try:
            number = super().to_python(value)
        except forms.ValidationError:
            number = _ID_RANGE[1] + 1
        if number is not None and not _ID_RANGE[0] <= number <= _ID_RANGE[1]:
            raise forms.ValidationError(ID_FORM + _got(value), code="invalid")
        return number


class IdFilter(django_filters.NumberFilter):
    field_class = _IdField


class InstantFilter(django_filters.IsoDateTimeFilter):
    """A date-time filter whose every refusal names the expected form (a 400, never a 500)."""

    field_class = _InstantField


class DayFilter(django_filters.DateFilter):
    field_class = _DayField


class FilterBackend(DjangoFilterBackend):
    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None and not _names_a_filter(
            request.query_params, filterset_class
        ):
            return queryset
        return super().filter_queryset(request, queryset, view)


def _names_a_filter(params: Any, filterset_class: type) -> bool:
    """True when a query parameter may belong to one of the filters: its name, or its name and
    a suffix (range filters read ``<name>_min``, ``<name>_after``, ...)."""
    names = _filter_names(filterset_class)
    return any(param.startswith(names) for param in params)


@lru_cache(maxsize=64)
def _filter_names(filterset_class: type) -> tuple[str, ...]:
    return tuple(filterset_class.base_filters)


class SearchFilter(filters.SearchFilter):
    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        text = request.query_params.get(self.search_param, "")
        if "\x00" in text or len(text) > MAX_SEARCH_LENGTH:
            raise ValidationError(
                {
                    self.search_param: [
                        f"Text of at most {MAX_SEARCH_LENGTH} characters, without NUL characters."
                    ]
                }
            )
        return super().filter_queryset(request, queryset, view)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        names = [f.lstrip("^=@$") for f in getattr(view, "search_fields", [])]
        fields = ", ".join(names)
        verb = "contains" if len(names) == 1 else "contain"
        return [
            {
                "name": self.search_param,
                "required": False,
                "in": "query",
                "description": f"Rows whose {fields} {verb} every word of this text "
                "(case-insensitive).",
                "schema": {"type": "string", "maxLength": MAX_SEARCH_LENGTH},
            }
        ]


class OrderingFilter(filters.OrderingFilter):
    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> Any:
        raw = request.query_params.get(self.ordering_param)
        if raw is None:
            return self.get_default_ordering(view)
        allowed = self._allowed(view)
        fields = [f.strip() for f in raw.split(",")]
        # One optional leading "-": "--id" is no field (Django would raise a FieldError: a 500).
        if any(f.removeprefix("-") not in allowed for f in fields):
            raise ValidationError(
                {
                    self.ordering_param: [
                        f"Comma-separated fields among {', '.join(allowed)}, each optionally "
                        f"prefixed with - for descending order; got {raw[:60]!r}."
                    ]
                }
            )
        return fields

    @staticmethod
    def _allowed(view: Any) -> list[str]:
        return list(getattr(view, "ordering_fields", None) or [])

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        allowed = self._allowed(view)
        return [
            {
                "name": self.ordering_param,
                "required": False,
                "in": "query",
                "description": f"Sort by {', '.join(allowed)} (comma-separated; prefix - for "
                "descending), e.g. `-" + allowed[-1] + "`.",
                "schema": {"type": "string"},
            }
        ]
