"""Pages of a list: ``?page=N&page_size=M``. A malformed value is a 400 naming the parameter
(DRF's own paginator falls back to the defaults, so a typo silently returned another page)."""

from __future__ import annotations

from typing import Any

from django.core.paginator import InvalidPage
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

_POSITIVE = "A whole number from 1"


def _positive(request: Request, name: str, default: int, maximum: int | None = None) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    text = raw.strip()
    bound = f" to {maximum}" if maximum else " up"
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= (maximum or int(text)):
        raise ValidationError({name: [f"{_POSITIVE}{bound}; got {raw[:40]!r}."]})
    return int(text)


class Pagination(PageNumberPagination):
    """?page=N (from 1) & page_size=M (1 to 500, default 50)."""

    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int:
        return _positive(request, self.page_size_query_param, self.page_size, self.max_page_size)

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self.request = request
        page_size = self.get_page_size(request)
        page_number = _positive(request, self.page_query_param, 1)
        paginator = self.django_paginator_class(queryset, page_size)
        try:
            self.page = paginator.page(page_number)
        except InvalidPage:
            raise NotFound(
                f"Page {page_number} is past the last page ({paginator.num_pages})."
            ) from None
        return list(self.page)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "Page number, from 1. Past the last page: 404.",
                "schema": {"type": "integer", "minimum": 1},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {self.max_page_size} (default "
                f"{self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
