"""Django's session, authentication and messages middleware, skipped for API requests.

Requests under ``/api/`` authenticate with a key (DRF sets ``request.user`` itself), never use a
session, a logged-in user or flash messages, and their responses never carry a session cookie;
yet the stock middleware builds a session store, a lazy user and two message storages for each
of them. These subclasses (subclasses, so Django's admin checks still find them) pass API
requests straight through and behave exactly as the stock ones for every other request.

CsrfViewMiddleware stays as shipped: DRF's views are CSRF-exempt already, its cost on an API
request is a cookie lookup, and ``check --deploy`` looks for it by its exact path.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest

API_PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    """``/api`` itself and everything under ``/api/`` (not ``/apix``)."""
    return path.startswith(API_PREFIX) or path == API_PREFIX[:-1]


def is_api_request(request: HttpRequest) -> bool:
    return is_api_path(request.path_info)


class _BrowserOnly:
    get_response: Any
    async_mode: bool

    def __call__(self, request: HttpRequest) -> Any:
        if not self.async_mode and is_api_request(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_BrowserOnly, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth.AuthenticationMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages.MessageMiddleware):
    pass
