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

from functools import lru_cache
from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

MAX_SEARCH_LENGTH = 200


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
        fields = ", ".join(f.lstrip("^=@$") for f in getattr(view, "search_fields", []))
        return [
            {
                "name": self.search_param,
                "required": False,
                "in": "query",
                "description": f"Rows whose {fields} contain every word of this text "
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
        if not all(fields) or any(f.lstrip("-") not in allowed for f in fields):
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
