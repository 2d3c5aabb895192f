"""The API's own views and error handling: GET /api/v1/key/, and JSON errors under /api/."""

from __future__ import annotations

import contextlib
import logging
from http import HTTPStatus
from typing import Any

from django.db import DatabaseError, DataError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import exceptions, serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from .. import selectors
from ..models import APIKey
from .authentication import MSG_MISSING, authenticate_request
from .permissions import HasValidKey

logger = logging.getLogger(__name__)


MSG_DATA_ERROR = (
    "A value in the request is out of the range the database can store or compare "
    "(a number or date too large?)."
)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with our wording for a missing key and a JSON 503 (never a bare 500)
    when the database is unreachable."""
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = exceptions.ErrorDetail(MSG_MISSING, code="not_authenticated")
    if isinstance(exc, DataError):  # a value the database cannot take (out of its range)
        return Response({"detail": MSG_DATA_ERROR}, status=400)
    if isinstance(exc, DatabaseError):
        logger.exception("database error on the API")
        return Response(
            {"detail": "The service is temporarily unavailable. Try again shortly."}, status=503
        )
    return drf_exception_handler(exc, context)


MSG_NO_ROUTE = (
    "Not found: no API route matches this URL (ids are numeric). "
    "The routes are listed at /api/docs/ and /api/schema/."
)
MSG_SERVER_ERROR = "Internal error. It has been logged."
# Headers a JSON replacement of an error page keeps.
_KEPT_HEADERS = ("Allow", "WWW-Authenticate", "Retry-After")


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": MSG_NO_ROUTE}, status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": MSG_SERVER_ERROR}, status=500)


def as_json_error(response: HttpResponse) -> HttpResponse:
    """An error page Django made outside DRF (a URL that resolves to nothing, debug's HTML or
    text pages for 404, 400 and 500) as the API's JSON ``{"detail": ...}``, same status. Only
    the status and a few headers are kept: a debug page's body holds internals."""
    content_type = response.get("Content-Type", "")
    if response.status_code < 400 or content_type.startswith("application/json"):
        return response
    status = response.status_code
    if status == 404:
        detail = MSG_NO_ROUTE
    elif status >= 500:
        detail = MSG_SERVER_ERROR
    else:
        try:
            detail = f"{HTTPStatus(status).phrase}."
        except ValueError:
            detail = "Request refused."
    replacement = JsonResponse({"detail": detail}, status=status)
    for header in _KEPT_HEADERS:
        if header in response:
            replacement[header] = response[header]
    return replacement


class RouteMethodsFirst:
    """For API views: a method the route does not have is 405 (JSON, with ``Allow``) whatever
    the key, so 401, 403 and 429 only ever concern an operation that exists. The key is still
    checked, its outcome unused: the request is counted in usage (and toward the limits) like
    any request that presents a key."""

    def perform_authentication(self, request: Request) -> None:
        method = (request.method or "").lower()
        if method not in self.http_method_names or not hasattr(self, method):  # type: ignore[attr-defined]
            with contextlib.suppress(exceptions.APIException):
                authenticate_request(request._request)
            raise exceptions.MethodNotAllowed(request.method)
        super().perform_authentication(request)  # type: ignore[misc]


class KeyInfoSerializer(serializers.Serializer):
    """The calling key: its name and public id, its permissions per module, when it expires,
    its status, and whether it was replaced by rotation (then `grace_ends_at` says when it
    stops working and `replaced_by` names the new key by public id)."""

    # Documentation only: the view answers keys.selectors.key_self_description.

    name = serializers.CharField()
    public_id = serializers.CharField()
    scopes = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    expires_at = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=["active", "expired", "revoked"])
    in_grace_period = serializers.BooleanField()
    grace_ends_at = serializers.DateTimeField(allow_null=True)
    replaced_by = serializers.CharField(allow_null=True)
    total_requests = serializers.IntegerField(required=False)
    requests_24h = serializers.IntegerField(required=False)


class KeyInfoView(RouteMethodsFirst, APIView):
    """Tells an integration about its own key. Any valid key may call it; no scope needed."""

    permission_classes = [HasValidKey]
    key_module = "key"  # declared so the deny-by-default walk sees it; HasValidKey decides

    @extend_schema(
        responses=KeyInfoSerializer, summary="The calling key: name, scopes, expiry, grace period"
    )
    def get(self, request: Request) -> Response:
        key: APIKey = request.auth
        return Response(selectors.key_self_description(key))


MSG_SCHEMA_NOT_ACCEPTABLE = (
    "The schema is served as OpenAPI JSON (application/vnd.oai.openapi+json or "
    "application/json) or YAML (application/vnd.oai.openapi, application/yaml, or ?format=yaml); "
    "the Accept header allows none of them."
)


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema; ``?format=`` other than json or yaml is a 400 saying so (DRF answers
    404, which read as "no such route")."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        if force:  # the error response itself (a 400, 405, 406...): plain JSON
            return JSONRenderer(), JSONRenderer.media_type
        try:
            return super().perform_content_negotiation(request)
        except Http404:
            raise exceptions.ValidationError({"format": ["json (the default) or yaml."]}) from None
        except exceptions.NotAcceptable:
            raise exceptions.NotAcceptable(MSG_SCHEMA_NOT_ACCEPTABLE) from None


class DocsView(SpectacularSwaggerView):
    """The Swagger UI page: GET (and HEAD) only. Anything else is a 405 naming them (JSON, as
    every error under /api/), never an attempt to render the page for OPTIONS (a 500)."""

    http_method_names = ["get", "head"]
