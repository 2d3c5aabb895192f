"""The admin's query parameters: refused with a clear 400 page when they cannot be a filter.

- ``AdminQueryGuardMiddleware`` (every ``/admin/`` page, Django's own included): a parameter
  name or value with control characters (NUL: PostgreSQL refuses it in text, so the query
  would fail with a 500) or of an absurd length never reaches a view.
- ``GuardedChangelistMixin`` (our ModelAdmins): no lookups through secret-derived fields (a
  prefix filter on a key hash recovers it a character at a time, as Django's UserAdmin refuses
  ``password``), and a filter value a list filter cannot use (``BadFilterValue``) or Django
  rejects (``IncorrectLookupParameters``: Django would redirect to a "database error" page)
  gets the same 400 page naming the parameter.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin import site
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from keys.models import SECRET_DERIVED_FIELDS

MAX_NAME_LENGTH = 100
MAX_VALUE_LENGTH = 500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
TEMPLATE = "admin/bad_filter.html"


class BadFilterValue(Exception):
    """A query parameter the admin cannot use; ``param`` names it, the message says why."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


def check_param(name: str, value: str) -> None:
    """The rules every admin query parameter meets, whatever the page."""
    shown = name[:MAX_NAME_LENGTH]
    if len(name) > MAX_NAME_LENGTH or _CONTROL.search(name):
        raise BadFilterValue(shown, "this is not a parameter the admin knows.")
    if _CONTROL.search(value):
        raise BadFilterValue(name, "the value contains control characters (such as NUL).")
    if len(value) > MAX_VALUE_LENGTH:
        raise BadFilterValue(name, f"the value is longer than {MAX_VALUE_LENGTH} characters.")


def bad_filter_response(request: HttpRequest, error: BadFilterValue) -> HttpResponse:
    context = {
        **site.each_context(request),
        "title": "This filter cannot be applied",
        "param": error.param,
        "reason": error.message,
        "unfiltered_url": request.path,
    }
    response = TemplateResponse(request, TEMPLATE, context, status=400)
    response.render()  # rendered here: a middleware's response is not rendered by the handler
    return response


class AdminQueryGuardMiddleware:
    """Checks every query parameter of an admin page before any view runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith("/admin/") and request.META.get("QUERY_STRING"):
            try:
                for name, values in request.GET.lists():
                    for value in values:
                        check_param(name, value)
            except BadFilterValue as error:
                return bad_filter_response(request, error)
        return self.get_response(request)


class GuardedChangelistMixin:
    """For a ModelAdmin: refuses lookups through secret-derived fields, and answers a filter
    that cannot be applied with the 400 page instead of a 500 or a redirect."""

    def lookup_allowed(self, lookup: str, value: Any, request: HttpRequest | None = None) -> bool:
        if SECRET_DERIVED_FIELDS.intersection(lookup.split(LOOKUP_SEP)):
            return False
        return super().lookup_allowed(lookup, value, request)  # type: ignore[misc]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> Any:
        changelist = super().get_changelist(request, **kwargs)  # type: ignore[misc]
        return type("Guarded" + changelist.__name__, (_CheckedFilters, changelist), {})

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        _check_ip_lookups(request, self.model)  # type: ignore[attr-defined]
        _check_choice_lookups(request, self.model)  # type: ignore[attr-defined]
        try:
            return super().get_changelist_instance(request)  # type: ignore[misc]
        except DisallowedModelAdminLookup as exc:
            name = str(exc).removeprefix("Filtering by ").split(" ", 1)[0]
            raise BadFilterValue(name, "filtering by this field is not allowed.") from None
        except IncorrectLookupParameters as exc:
            raise BadFilterValue(*_describe(request, exc)) from None
        except OverflowError as exc:  # Django's date hierarchy: ?created_at__year=99999999999
            raise BadFilterValue(*_describe(request, exc)) from None

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        try:
            return super().changelist_view(request, extra_context)  # type: ignore[misc]
        except BadFilterValue as error:
            return bad_filter_response(request, error)


class _CheckedFilters:
    """A ChangeList whose list filters refuse a value they cannot use, instead of silently
    showing the unfiltered list (``?status=bogus``). A ``SimpleListFilter`` takes the values
    of its ``lookups``; one whose values are open-ended defines ``check_value()`` instead
    (returns None, or why the value cannot be used)."""

    def get_filters(self, request: HttpRequest) -> Any:
        found = super().get_filters(request)  # type: ignore[misc]
        for spec in found[0]:
            if isinstance(spec, admin.SimpleListFilter) and spec.value() is not None:
                _check_simple_filter(spec)
        return found


def _check_simple_filter(spec: admin.SimpleListFilter) -> None:
    value = spec.value()
    check = getattr(spec, "check_value", None)
    if check is not None:
        reason = check()
    else:
        accepted = [str(choice) for choice, _ in spec.lookup_choices]
        reason = None if value in accepted else _expected(accepted)
    if reason:
        raise BadFilterValue(spec.parameter_name, reason)


def _expected(accepted: list[str]) -> str:
    return "expected one of " + ", ".join(f"“{choice}”" for choice in accepted) + "."


def _check_choice_lookups(request: HttpRequest, model: Any) -> None:
    """A field with choices (an alert's kind, an audit entry's action) filtered by a value
    that is none of them (``?kind=bogus``, ``?kind__exact=bogus``), and ``__isnull`` with a
    value that is not a yes or no."""
    for name, values in request.GET.lists():
        field_name, _, lookup = name.partition(LOOKUP_SEP)
        if name.endswith(LOOKUP_SEP + "isnull"):
            # Django reads any text but "false" and "0" as True: ?kind__isnull=bogus.
            if any(value.lower() not in ("true", "false", "1", "0") for value in values):
                raise BadFilterValue(name, "expected “True” or “False”.")
            continue
        if lookup not in ("", "exact", "in"):
            continue
        try:
            field = model._meta.get_field(field_name)
        except FieldDoesNotExist:
            continue
        if not getattr(field, "choices", None):
            continue
        accepted = [str(choice) for choice, _ in field.flatchoices]
        for value in values:
            for item in value.split(",") if lookup == "in" else [value]:
                if item not in accepted:
                    raise BadFilterValue(name, _expected(accepted))


def _check_ip_lookups(request: HttpRequest, model: Any) -> None:
    """An IP address field takes any text when the filter is built and fails only when the
    query runs (PostgreSQL: ``?ip=abc`` was a 500): check those values up front."""
    for name, values in request.GET.lists():
        field_name, _, lookup = name.partition(LOOKUP_SEP)
        if lookup not in ("", "exact", "iexact", "in"):
            continue
        try:
            field = model._meta.get_field(field_name)
        except FieldDoesNotExist:
            continue
        if not isinstance(field, models.GenericIPAddressField):
            continue
        for value in values:
            for item in value.split(",") if lookup == "in" else [value]:
                try:
                    ipaddress.ip_address(item.strip())
                except ValueError:
                    raise BadFilterValue(name, "expected an IP address.") from None


def _describe(request: HttpRequest, exc: Exception) -> tuple[str, str]:
    """Which parameter Django could not use, as well as we can tell, and why."""
    cause = exc.__cause__ or exc.__context__ or exc
    messages = getattr(cause, "messages", None)
    text = " ".join(messages) if messages else str(cause)
    if not text or len(text) > 200:
        text = "the value does not fit this filter."
    names = [n for n in request.GET if n not in ("e", "o", "q", "_popup", "_to_field")]
    name = next((n for n in names if n.split(LOOKUP_SEP)[0] in text), names[0] if names else "p")
    return name, text
