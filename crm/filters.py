"""Search and ordering for the CRM lists and exports, strict about their input: a value the API
cannot honour is a 400 naming the parameter, never silently ignored (DRF's own filters drop
unknown ordering fields) nor passed to the database (PostgreSQL refuses NUL in text)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import filters
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

MAX_SEARCH_LENGTH = 200


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
