"""Error pages: JSON under /api/, the admin's own 403 page for staff, Django's usual pages
elsewhere."""

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from crm_keys.forbidden import admin_permission_denied
from keys.api.guard import refusal_of_unreadable_request
from keys.api.views import json_not_found, json_server_error

from .middleware import is_api_request


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        if isinstance(exception, DisallowedHost):
            return JsonResponse(
                {"detail": "Bad request: this server does not answer to that Host header."},
                status=400,
            )
        return refusal_of_unreadable_request(exception) or JsonResponse(
            {"detail": "Bad request: the request could not be read (too large or malformed)."},
            status=400,
        )
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return JsonResponse({"detail": "Permission denied."}, status=403)
    user = getattr(request, "user", None)
    if (
        request.path_info.startswith("/admin/")
        and user is not None
        and user.is_active
        and user.is_staff
    ):
        # In the admin's look, naming the missing permission, with the way back.
        return admin_permission_denied(request)
    return defaults.permission_denied(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_request(request):
        return json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_request(request):
        return json_server_error(request)
    return defaults.server_error(request)
