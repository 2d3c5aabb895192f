"""DRF permissions: the view's (module, action) checked against the calling key's scopes.

Deny by default: a key-authenticated view that declares no module, or a request whose action
cannot be mapped, is refused for every key.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from django.urls import get_resolver
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from crm.modules import MODULES

from ..models import APIKey
from ..usage.recorder import endpoint_label

# DRF viewset action -> key action. Extra actions declare theirs: @action(..., key_action="export").
VIEWSET_ACTIONS = {
    "list": "view",
    "retrieve": "view",
    "metadata": "view",
    "create": "create",
    "update": "edit",
    "partial_update": "edit",
    "destroy": "delete",
}
# Plain APIViews: by the real HTTP method (X-HTTP-Method-Override and friends are ignored).
METHOD_ACTIONS = {
    "GET": "view",
    "HEAD": "view",
    "OPTIONS": "view",
    "POST": "create",
    "PUT": "edit",
    "PATCH": "edit",
    "DELETE": "delete",
}


def required_scope(view: Any, method: str) -> tuple[str, str] | None:
    """(module, action) a request with ``method`` to ``view`` needs, or None when the view does
    not say (-> refused). The OpenAPI schema documents each operation with the same answer."""
    module = getattr(view, "key_module", None)
    if not module:
        return None
    action = getattr(view, "key_action", None)
    if action is None:
        action_map = getattr(view, "action_map", None)
        if action_map is not None:  # a viewset: the action this route maps the method to
            mapped = "metadata" if method == "OPTIONS" else action_map.get(method.lower(), "")
            action = VIEWSET_ACTIONS.get(mapped)
        else:
            action = METHOD_ACTIONS.get(method)
    if action is None:
        return None
    return module, action


@lru_cache(maxsize=1)
def endpoint_scopes() -> dict[str, str]:
    """Usage endpoint label -> the ``module:action`` it needs, for every operation of the CRM
    API (``GET /api/v1/contacts/{id}/`` -> ``contacts:view``): the URLconf walked once, each
    route and method answered by ``required_scope`` as a request would be. Endpoints that need
    no permission (``/api/v1/key/``) are absent."""
    out: dict[str, str] = {}
    for route, callback in _walk(get_resolver().url_patterns):
        cls = getattr(callback, "cls", None)
        module = getattr(cls, "key_module", None)
        if module not in MODULES:
            continue
        initkwargs = getattr(callback, "initkwargs", None) or {}
        actions = getattr(callback, "actions", None)
        if actions:  # a viewset route: DRF answers HEAD like GET and OPTIONS as "metadata"
            methods = {**({"head": actions["get"]} if "get" in actions else {}), **actions}
            methods["options"] = "metadata"
        else:
            methods = {m: None for m in cls.http_method_names if hasattr(cls, m)}
        for method, view_action in methods.items():
            view = SimpleNamespace(
                key_module=module,
                key_action=initkwargs.get("key_action", getattr(cls, "key_action", None)),
                action=view_action,
            )
            needed = required_scope(view, method.upper())
            if needed is not None:
                out[endpoint_label(method.upper(), route)] = f"{needed[0]}:{needed[1]}"
    return out


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.callback


class HasKeyScope(BasePermission):
    message = "This API key does not allow this request."

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request.auth
        if not isinstance(key, APIKey):
            return False  # DRF answers 401 (no credentials) since authentication did not succeed
        method = request._request.method or ""
        if method == "OPTIONS":  # DRF's metadata asks about POST and PUT with a cloned request
            method = request.method
        needed = required_scope(view, method)
        if needed is None:
            self.message = "This endpoint declares no module and action, so no API key may call it."
            return False
        module, action = needed
        if key.allows(module, action):
            return True
        self.message = f"This API key does not have the {module}:{action} permission."
        return False


class HasValidKey(BasePermission):
    """Any valid key, no scope needed (GET /api/v1/key/)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, APIKey)
