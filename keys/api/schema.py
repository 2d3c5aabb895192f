"""OpenAPI generation (drf-spectacular) that knows our authentication and scopes: both header
forms appear as security schemes, and each operation says which module:action it needs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from .permissions import required_scope


class ScopedAutoSchema(AutoSchema):
    def required_scope(self) -> str | None:
        needed = required_scope(self.view, self.method)
        if needed is None or needed[0] == "key":
            return None
        return f"{needed[0]}:{needed[1]}"

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        scope = self.required_scope()
        if scope:
            operation["x-required-scope"] = scope
            note = f"Requires the API key permission `{scope}`."
        else:
            note = "Any valid API key; no permission needed."
        operation["description"] = f"{note}\n\n{operation.get('description', '')}".strip()
        return operation


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "keys.api.authentication.APIKeyAuthentication"
    name = ["BearerKey", "HeaderKey"]

    def get_security_requirement(self, auto_schema: AutoSchema) -> list[dict[str, list]]:
        # Either header works: two alternative requirements, not one that needs both.
        return [{"BearerKey": []}, {"HeaderKey": []}]

    def get_security_definition(self, auto_schema: AutoSchema) -> list[dict[str, Any]]:
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "icrm_<public id>_<secret><checksum>",
                "description": "Authorization: Bearer <key>",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "X-API-Key: <key>",
            },
        ]
