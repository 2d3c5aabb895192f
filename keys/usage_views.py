"""Admin download of a key's hourly usage rows as CSV (wired in ApiKeyAdmin.get_urls)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.views.decorators.http import require_GET

from . import usage
from .models import APIKey


class _Echo:
    """A file-like object whose write() returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


@require_GET
def usage_csv(request: HttpRequest, object_id: str) -> StreamingHttpResponse:
    """Every retained hourly row of one key (hour in UTC, endpoint, requests, errors), oldest
    first, streamed so a key with 90 days of rows costs no memory. Needs view permission on
    API keys; the key is named by public id only."""
    if not (
        request.user.has_perm("keys.view_apikey") or request.user.has_perm("keys.change_apikey")
    ):
        raise PermissionDenied
    try:
        key = APIKey.objects.only("id", "public_id").get(pk=int(object_id))
    except (APIKey.DoesNotExist, ValueError):
        raise Http404("No such API key.") from None

    def rows() -> Iterator[str]:
        writer = csv.writer(_Echo())
        yield writer.writerow(["hour_utc", "endpoint", "requests", "errors"])
        for hour, endpoint, requests, errors in usage.iter_hourly_rows(key):
            yield writer.writerow([hour.strftime("%Y-%m-%dT%H:00:00Z"), endpoint, requests, errors])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="usage-icrm_{key.public_id}.csv"'
    response["Cache-Control"] = "no-store"
    return response
