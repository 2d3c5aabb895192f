"""DRF permissions: the view's (module, action) checked against the calling key's scopes.

Deny by default: a key-authenticated view that declares no module, or a request whose action
cannot be mapped, is refused for every key.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from ..models import APIKey

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
