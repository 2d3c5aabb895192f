"""Error pages: JSON under /api/, Django's usual pages elsewhere."""

from django.http import HttpRequest, HttpResponse
from django.views import defaults

from keys.api import json_not_found, json_server_error


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        return json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        return json_server_error(request)
    return defaults.server_error(request)
