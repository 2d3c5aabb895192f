"""The API's own views and error handling: GET /api/v1/key/, and JSON errors under /api/."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from .. import selectors
from ..models import APIKey
from .authentication import MSG_MISSING
from .permissions import HasValidKey

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with our wording for a missing key and a JSON 503 (never a bare 500)
    when the database is unreachable."""
    if isinstance(exc, exceptions.NotAuthenticated):
        exc.detail = exceptions.ErrorDetail(MSG_MISSING, code="not_authenticated")
    if isinstance(exc, DatabaseError):
        logger.exception("database error on the API")
        return Response(
            {"detail": "The service is temporarily unavailable. Try again shortly."}, status=503
        )
    return drf_exception_handler(exc, context)


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse({"detail": "Not found."}, status=404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"detail": "Internal error. It has been logged."}, status=500)


class KeyInfoSerializer(serializers.Serializer):
    """Documentation of GET /api/v1/key/ (the view returns selectors.key_self_description)."""

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


class KeyInfoView(APIView):
    """Tells an integration about its own key. Any valid key may call it; no scope needed."""

    permission_classes = [HasValidKey]
    key_module = "key"  # declared so the deny-by-default walk sees it; HasValidKey decides

    @extend_schema(
        responses=KeyInfoSerializer, summary="The calling key: name, scopes, expiry, grace period"
    )
    def get(self, request: Request) -> Response:
        key: APIKey = request.auth
        return Response(selectors.key_self_description(key))
