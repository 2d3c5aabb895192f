"""Request- and response-side work for /api/: requests refused before any view (``guard``),
JSON errors, security headers, rotation notices and usage
counting (with the key's client, and the ``detail`` of an error response).

Runs after the view. It does no database or network I/O: usage goes to an in-process buffer
that a background thread ships to Redis or the database.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import format_datetime

from django.http import HttpRequest, HttpResponse

from crm_keys.middleware import is_api_request

from .. import crypto
from ..models import APIKey
from ..usage import recorder
from . import guard
from .views import as_json_error

RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


class APIResponseMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_api_request(request):
            return self.get_response(request)
        response = guard.refusal(request) or as_json_error(self.get_response(request))
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        rate_limit = getattr(request, "rate_limit", None)
        if rate_limit is not None:  # IETF draft-ietf-httpapi-ratelimit-headers field names
            for name, value in zip(RATE_LIMIT_HEADERS, rate_limit, strict=True):
                response[name] = str(value)
        key = getattr(request, "api_key", None)
        if key is not None and key.grace_ends_at is not None and response.status_code != 401:
            add_rotation_headers(response, key)
        if getattr(request, "api_key_presented", False):
            recorder.record_request(request, response.status_code, response)
        return response


def add_rotation_headers(response: HttpResponse, key: APIKey) -> None:
    """Tell an integration whose key was rotated that it must switch, and by when.
    Deprecation (RFC 9745) and Sunset (RFC 8594); the replacement is named by public id only."""
    grace_ends_at = key.grace_ends_at
    replacement = key.replaced_by.public_id if key.replaced_by_id else None
    response["Deprecation"] = "true"
    response["Sunset"] = format_datetime(grace_ends_at, usegmt=True)
    notice = f"This key was replaced by rotation and stops working at {grace_ends_at.isoformat()}."
    if replacement:
        # Not display_id: its "…" is not Latin-1, which a header must be.
        notice += f" Its replacement is {crypto.PREFIX}_{replacement}."
    response["X-API-Key-Notice"] = notice
