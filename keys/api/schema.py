"""The OpenAPI schema (drf-spectacular), written for integrators.

Each operation says what it does, the key permission it needs (``x-required-scope``, from the
same ``required_scope`` the permission check uses) and its filters; it is tagged with its
module; it documents the errors it can answer (400, 401, 403, 404, 429, 503) with the JSON
error schema and their headers. ``finish_schema`` (a post-processing hook) writes the
introduction: authentication, rotation, errors, rate limits, lists and CSV.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

from crm.modules import MODULES

from .permissions import required_scope

KEY_TAG = "Your key"

# viewset action -> (summary, what it does); {one} / {many} are the module's record names.
OPERATIONS = {
    "list": (
        "List {many}",
        "The {many}, a page at a time, narrowed by the filters below (every filter given must "
        "hold). A query parameter not listed here is a 400 naming the accepted ones.",
    ),
    "retrieve": ("Get {a_one}", "One {one}, by its id."),
    "create": (
        "Create {a_one}",
        "Creates {a_one} from the JSON body and returns it with its id. Optional fields left "
        "out get their defaults.",
    ),
    "update": (
        "Update {a_one} (required fields sent)",
        "Sets the {one}'s fields from the JSON body. Every required field must be present; "
        "optional fields left out keep their values (they are not reset to their defaults: "
        "send them, empty or at their default, to clear them). PATCH takes any subset.",
    ),
    "partial_update": (
        "Update some fields of {a_one}",
        "Changes only the fields present in the JSON body.",
    ),
    "destroy": ("Delete {a_one}", "Deletes the {one}. This cannot be undone."),
    "export": (
        "Export {many} as CSV",
        "Every {one} matching the filters below, as CSV (UTF-8, a header row, streamed): the "
        "list's filters, `search` and `ordering`, without pagination. The query runs before "
        "the response starts, so a bad value is a 400 and an unreachable database a 503; if "
        "the database fails mid-stream, the file's last line is `#ERROR: export interrupted…` "
        "and the chunked response ends without its final chunk (curl exits 18; HTTP libraries "
        "raise), so a truncated file is never mistaken for a whole one. By default a cell "
        "starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'` so "
        "a spreadsheet does not run it as a formula (a phone number `+1-555-…` becomes "
        "`'+1-555-…`); `formula_guard=off` returns every value exactly as stored.",
    ),
}

_HEADER = {"schema": {"type": "string"}}
RATE_LIMIT_HEADERS = {
    "RateLimit-Limit": {
        "schema": {"type": "integer"},
        "description": "The key's limit of requests per minute (only for a key that has one).",
    },
    "RateLimit-Remaining": {
        "schema": {"type": "integer"},
        "description": "Requests left in the current minute.",
    },
    "RateLimit-Reset": {
        "schema": {"type": "integer"},
        "description": "Seconds until the current window ends and the count starts again.",
    },
}
ROTATION_HEADERS = {
    "Deprecation": {**_HEADER, "description": "`true` when the key was replaced by rotation."},
    "Sunset": {**_HEADER, "description": "When a rotated key stops working (HTTP date)."},
    "X-API-Key-Notice": {**_HEADER, "description": "Which key replaces it, and by when."},
}

SUCCESS = {"200": "OK.", "201": "Created.", "204": "Deleted; no body."}
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string", "description": "What went wrong, in a sentence."}},
    "required": ["detail"],
}
INVALID_SCHEMA = {
    "type": "object",
    "description": "Each invalid query parameter or body field, with its messages (or `detail` "
    "for a body that is not JSON).",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "example": {"page_size": ["A whole number from 1 to 500; got '0'."]},
}


class ScopedAutoSchema(AutoSchema):
    # --- who the operation is for ------------------------------------------------------------

    def required_scope(self) -> str | None:
        needed = required_scope(self.view, self.method)
        if needed is None or needed[0] == "key":
            return None
        return f"{needed[0]}:{needed[1]}"

    def _module(self) -> str | None:
        module = getattr(self.view, "key_module", None)
        return module if module in MODULES else None

    def _action(self) -> str:
        return getattr(self.view, "action", None) or self.method.lower()

    def _names(self) -> dict[str, str]:
        meta = self.view.get_queryset().model._meta
        one = str(meta.verbose_name)
        a_one = f"{'an' if one[:1].lower() in 'aeiou' else 'a'} {one}"
        return {"one": one, "a_one": a_one, "many": str(meta.verbose_name_plural)}

    # --- what spectacular asks ---------------------------------------------------------------

    def get_tags(self) -> list[str]:
        module = self._module()
        return [MODULES[module].label] if module else [KEY_TAG]

    def get_summary(self) -> str | None:
        if self._module() and self._action() in OPERATIONS:
            return OPERATIONS[self._action()][0].format(**self._names())
        return super().get_summary()

    def get_description(self) -> str:  # type: ignore[override]
        if self._module() and self._action() in OPERATIONS:
            text = OPERATIONS[self._action()][1].format(**self._names())
        else:
            text = super().get_description()
        scope = self.required_scope()
        needs = (
            f"**Key permission:** `{scope}`."
            if scope
            else "**Key permission:** none; any valid key."
        )
        return f"{text}\n\n{needs}"

    def get_filter_backends(self) -> list[Any]:
        # The export takes the list's filters (spectacular only documents them on lists).
        if self._action() == "export":
            return list(getattr(self.view, "filter_backends", []))
        return super().get_filter_backends()

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        scope = self.required_scope()
        if scope:
            operation["x-required-scope"] = scope
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path" and parameter["name"] == "id":
                parameter["schema"] = {"type": "integer"}  # the route takes digits only
                parameter["description"] = "The record's id."
        self._add_responses(operation, scope)
        return operation

    # --- the responses every integrator must handle -------------------------------------------

    def _component(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _add_responses(self, operation: dict[str, Any], scope: str | None) -> None:
        responses = operation["responses"]
        for code, response in responses.items():
            if code.startswith("2"):
                response["description"] = response.get("description") or SUCCESS.get(code, "")
                response["headers"] = {
                    **response.get("headers", {}),
                    **RATE_LIMIT_HEADERS,
                    **ROTATION_HEADERS,
                }
        error = self._component("Error", ERROR_SCHEMA)

        def answer(description: str, schema: dict[str, str] = error, **headers: Any) -> dict:
            body = {"content": {"application/json": {"schema": schema}}}
            return {"description": description, **body, **({"headers": headers} if headers else {})}

        takes_input = any(p["in"] == "query" for p in operation.get("parameters", []))
        if takes_input or operation.get("requestBody"):
            responses["400"] = answer(
                "Invalid query parameter or body: each one named with its messages.",
                self._component("InvalidRequest", INVALID_SCHEMA),
            )
        if self.path.startswith("/api/v1/"):
            answers = "CSV (`text/csv`)" if self._action() == "export" else "`application/json`"
            responses["406"] = answer(f"The `Accept` header excludes {answers}, the type answered.")
        if operation.get("requestBody"):
            responses["411"] = answer(
                "The body was sent without `Content-Length` (chunked): not read, nothing changed."
            )
            responses["413"] = answer("The body is larger than 2.5 MB.")
            responses["415"] = answer(
                "The body is not JSON, or is declared in another charset than UTF-8."
            )
        responses["401"] = answer(
            "No key, or a malformed, mistyped, unknown, expired, revoked or rotated-out key.",
            **{"WWW-Authenticate": {**_HEADER, "description": '`Bearer realm="api"`'}},
        )
        refusals = "the request came from a browser, or from outside the key's IP allowlist."
        responses["403"] = answer(
            f"The key does not have the `{scope}` permission, or {refusals}"
            if scope
            else refusals.capitalize()
        )
        detail_route = "{" in self.path
        if detail_route or self._action() == "list":
            responses["404"] = answer(
                "No record with that id." if detail_route else "The page is past the last page."
            )
        responses["429"] = answer(
            "Over the key's rate limit, or too many failed authentications from your address.",
            **{
                "Retry-After": {
                    "schema": {"type": "integer"},
                    "description": "Seconds to wait before retrying.",
                },
                **RATE_LIMIT_HEADERS,
            },
        )
        responses["503"] = answer("The database is unavailable; retry shortly.")


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


# --- the introduction ------------------------------------------------------------------------

INTRODUCTION = """\
The CRM's REST API for integrations: contacts, leads and opportunities, each with list, get, \
create, replace, update, delete and CSV export.

## Authentication

Every request needs an API key, generated by an admin in *Admin > API Keys* and shown once. \
Send it in a header, either one:

    Authorization: Bearer icrm_…
    X-API-Key: icrm_…

A key is 56 characters: `icrm_<12-character public id>_<32-character secret><6-character \
checksum>`. Keep it in a secret store or an environment variable. Keys are for server-to-server \
use: a request with browser signals (`Origin`, `Sec-Fetch-Mode: cors`, \
`Sec-Fetch-Site: cross-site`) is refused, and so is a key in the URL or anywhere in the request body \
(treat such a key as leaked). Each key holds permissions `module:action` (`contacts:view`, \
`leads:create`, …); each operation names the one it needs. `GET /api/v1/key/` describes the \
calling key.

**Rotation.** When an admin rotates a key, the old one keeps working for a grace period and \
its responses carry `Deprecation: true`, `Sunset: <when it stops working>` and \
`X-API-Key-Notice` (naming the replacement by public id). Switch keys before the Sunset time.

## Errors

Every error is JSON `{"detail": "…"}`; a 400 names each invalid parameter or field instead.

| Status | Meaning |
|---|---|
| 400 | A query parameter or the body is invalid (e.g. `page_size=0`, a date that does not exist or an offset takes past year 1 or 9999, an `ordering` not listed), a parameter the operation does not take (the answer lists those it does), more than 1000 query parameters, or a body that is not UTF-8 JSON or is nested too deeply. |
| 401 | No key, or a malformed, mistyped, unknown, expired, revoked or rotated-out one, or a key anywhere in the URL (path or query) or in the body (treat it as leaked); with `WWW-Authenticate`. |
| 403 | The key lacks the permission, or the request came from a browser or from outside the key's IP allowlist. |
| 404 | No record with that id, a page past the last, or no such route. |
| 405 | The route does not have that method (whatever the key); `Allow` lists those it has. |
| 406 | The `Accept` header excludes the type the operation answers: JSON, or CSV (`text/csv`) for an export. |
| 411 | A body sent without `Content-Length` (`Transfer-Encoding: chunked`): not read, nothing changed. |
| 413 | The body is larger than 2.5 MB. |
| 415 | A body that is not JSON, or JSON declared in another charset than UTF-8 (JSON is UTF-8). |
| 429 | Over the key's rate limit, or too many failed authentications from your address; `Retry-After` says when to retry. |
| 503 | The database is unavailable; retry shortly. |

## Rate limits

A key may have a limit of requests per minute. Every response to such a key carries \
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds until the minute's \
window ends); past the limit the answer is 429 with `Retry-After`. A rotated key and its \
replacement share one count: using both during the grace period does not double the limit.

## Lists, filters and CSV

Lists come a page at a time: `page` (from 1) and `page_size` (1 to 500, default 50); the body \
holds `count`, `next`, `previous` and `results`. Filters, `search` and `ordering` are listed on \
each operation; a malformed value is a 400 naming the parameter. `…/export/` streams every \
matching row as CSV with the same filters. By default the export guards against spreadsheet \
formulas (a cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`, so \
`+1-555-…` reads `'+1-555-…`); programs that read the CSV pass `formula_guard=off` for the \
values exactly as stored. An export cut short by a server failure ends with the line \
`#ERROR: export interrupted…` and without the response's final chunk: check for either. \
Dates: `YYYY-MM-DD`; date-times: ISO 8601 (`2026-03-01T00:00:00Z`, UTC without an offset). \
A parameter an operation does not list is a 400. The trailing slash of every route is optional.

These pages are documentation only: calls from a browser are refused, so try the API with `curl` or your integration's HTTP client.
"""


def finish_schema(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Post-processing hook: the introduction, and one tag per module in registry order."""
    result["info"]["description"] = INTRODUCTION
    result["tags"] = [
        {"name": m.label, "description": f"{m.label}: permissions `{m.name}:<action>`."}
        for m in MODULES.values()
    ] + [{"name": KEY_TAG, "description": "What the calling key may do, and until when."}]
    return result
