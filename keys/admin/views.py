"""The key admin's own pages: Generate (with the show-once page), Rotate and the usage CSV
(Revoke is ``revoke.KeyRevokeViews``). A mixin of ``APIKeyAdmin``, shaped like Django's
``UserAdmin.user_change_password``: ``get_object`` -> permission -> 404 -> form ->
``TemplateResponse`` with the admin's context and a template named by a class attribute.

A new key's value exists only in the POST response that creates it: it is rendered into that
response (``Cache-Control: no-store``) and never put in a redirect, the session, the messages
framework, a cookie or a log. Generate and Rotate carry a one-time token, so a double
submission (double click, reload, back button) creates one key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.forms import Form
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET

from audit.actors import Actor
from crm_keys.csvstream import csv_lines

from .. import crypto, services
from ..models import APIKey
from ..scopes import describe
from ..services import rules
from ..usage.stats import iter_hourly_rows
from .forms import KeyGenerateForm, RotateForm
from .once import FORM_EXPIRED, consume_form_nonce, issue_form_nonce, no_store

__all__ = ["KeyAdminViews", "consume_form_nonce", "issue_form_nonce", "no_store"]


class KeyAdminViews:
    """The extra views of ``APIKeyAdmin`` (which supplies ``admin_site``, ``opts``,
    ``get_object`` and the ``has_*_permission`` methods)."""

    generate_template = "admin/keys/apikey/generate.html"
    show_once_template = "admin/keys/apikey/show_once.html"
    rotate_template = "admin/keys/apikey/rotate_confirmation.html"

    admin_site: admin.AdminSite
    opts: Any
    media: Any

    def get_urls(self) -> list[Any]:
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path(
                "revoke-leaked/",
                wrap(self.revoke_leaked_view),  # type: ignore[attr-defined]
                name="{}_{}_revoke_leaked".format(*info),
            ),
            path(
                "<path:object_id>/rotate/",
                wrap(self.rotate_view),
                name="{}_{}_rotate".format(*info),
            ),
            path(
                "<path:object_id>/revoke/",
                wrap(self.revoke_view),  # type: ignore[attr-defined]
                name="{}_{}_revoke".format(*info),
            ),
            path(
                "<path:object_id>/shown/",
                wrap(self.shown_view),
                name="{}_{}_shown".format(*info),
            ),
            path(
                "<path:object_id>/usage.csv",
                wrap(self.usage_csv_view),
                name="{}_{}_usage_csv".format(*info),
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    # Shared -------------------------------------------------------------------------------

    def _page_context(self, request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": self.has_view_permission(request),  # type: ignore[attr-defined]
            "media": self.media,
            **extra,
        }

    def _render(
        self, request: HttpRequest, template: str, context: dict[str, Any]
    ) -> TemplateResponse:
        request.current_app = self.admin_site.name
        return TemplateResponse(request, template, context)

    def _key_for(
        self, request: HttpRequest, object_id: str, allowed: Callable[..., bool]
    ) -> APIKey:
        """The key of a page, after the permissions to see it and to act on it (Django's
        order: permission, then 404)."""
        key = self.get_object(request, unquote(object_id))  # type: ignore[attr-defined]
        if not (self.has_view_permission(request, key) and allowed(request, key)):  # type: ignore[attr-defined]
            raise PermissionDenied
        if key is None:
            raise Http404("No such API key.")
        return key

    def _with_one_time_token(
        self, request: HttpRequest, form: Form, act: Callable[[], HttpResponse | str]
    ) -> HttpResponse | str:
        """Spend the form's token, then ``act``. A token spent before (reload, back button,
        double click) gets the "already submitted" page and creates nothing; an unknown one
        (an old tab, another session) gets an error message to show on the form."""
        state = consume_form_nonce(request, form.cleaned_data["form_nonce"])
        if state == "used":
            return self._already_submitted(request)
        if state != "ok":
            return FORM_EXPIRED
        return act()

    @method_decorator(sensitive_variables("full_key"))
    def _show_once(
        self,
        request: HttpRequest,
        *,
        key: APIKey,
        full_key: str,
        old_key: APIKey | None = None,
    ) -> HttpResponse:
        api_root = request.build_absolute_uri("/api/v1/")
        viewable = [m for m, actions in key.scopes.items() if "view" in actions]
        example_url = f"{api_root}{viewable[0]}/" if viewable else f"{api_root}key/"
        context = self._page_context(
            request,
            "API key rotated" if old_key else "API key generated",
            key=key,
            old_key=old_key,
            full_key=full_key,
            scopes_text=describe(key.scopes),
            example_url=example_url,
            key_url=reverse("admin:keys_apikey_change", args=[key.pk]),
            # The page replaces its history entry (the POST) with this address, so Back and
            # Reload reach a plain page saying the key was shown, never "Confirm Form
            # Resubmission" or the key.
            shown_url=reverse("admin:keys_apikey_shown", args=[key.pk]),
        )
        return no_store(self._render(request, self.show_once_template, context))

    def shown_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Where a show-once page leaves the browser's history: the key was shown, once."""
        key = self._key_for(request, object_id, lambda request, key: True)
        # The new key of a rotation was shown by "API key rotated": the reload says the same.
        old_key = APIKey.objects.filter(replaced_by=key).first()
        context = self._page_context(
            request,
            "API key rotated" if old_key else "API key generated",
            key=key,
            old_key=old_key,
            full_key=None,
            shown=True,
            key_url=reverse("admin:keys_apikey_change", args=[key.pk]),
        )
        return no_store(self._render(request, self.show_once_template, context))

    def _already_submitted(self, request: HttpRequest) -> HttpResponse:
        context = self._page_context(request, "Form already submitted", full_key=None)
        return no_store(self._render(request, self.show_once_template, context))

    # Generate -----------------------------------------------------------------------------

    @method_decorator(sensitive_post_parameters())
    @method_decorator(sensitive_variables("generated"))
    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied
        if request.method == "POST":
            form = KeyGenerateForm(request.POST, user=request.user)
            if form.is_valid():

                def generate() -> HttpResponse | str:
                    data = form.cleaned_data
                    try:
                        generated = services.key_generate(
                            name=data["name"],
                            description=data["description"],
                            scopes=data["scopes"],
                            expiry_policy=data["expiry_policy"],
                            expiry_date=data["expiry_date"],
                            owner=data.get("owner"),
                            allowed_ips=data.get("allowed_ips", ""),
                            actor=Actor.from_request(request),
                        )
                    except services.KeyServiceError as exc:
                        return str(exc)
                    return self._show_once(request, key=generated.key, full_key=generated.full_key)

                outcome = self._with_one_time_token(request, form, generate)
                if not isinstance(outcome, str):
                    return outcome
                form.add_error(None, outcome)
                # A new token for the next attempt; the spent one stays spent.
                form.data = form.data.copy()
                form.data["form_nonce"] = issue_form_nonce(request)
        else:
            form = KeyGenerateForm(
                initial={"form_nonce": issue_form_nonce(request)}, user=request.user
            )
        context = self._page_context(
            request,
            "Generate API key",
            form=form,
            media=self.media + form.media,
            errors=form.errors,
            add=True,
            **(extra_context or {}),
        )
        return no_store(self._render(request, self.generate_template, context))

    # Rotate -------------------------------------------------------------------------------

    @method_decorator(sensitive_post_parameters())
    @method_decorator(sensitive_variables("rotated"))
    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._key_for(request, object_id, self.has_rotate_permission)  # type: ignore[attr-defined]
        error = ""
        if request.method == "POST":
            form = RotateForm(request.POST)
            if form.is_valid():

                def rotate() -> HttpResponse | str:
                    try:
                        rotated = services.key_rotate(
                            key=key,
                            grace=form.cleaned_data["grace"],
                            actor=Actor.from_request(request),
                        )
                    except services.KeyServiceError as exc:
                        return str(exc)
                    return self._show_once(
                        request,
                        key=rotated.key,
                        full_key=rotated.full_key,
                        old_key=rotated.old_key,
                    )

                outcome = self._with_one_time_token(request, form, rotate)
                if not isinstance(outcome, str):
                    return outcome
                error = outcome
            form = RotateForm(
                initial={
                    "form_nonce": issue_form_nonce(request),
                    "grace": request.POST.get("grace", "24h"),
                }
            )
        else:
            form = RotateForm(initial={"form_nonce": issue_form_nonce(request), "grace": "24h"})
        refusal = key.rotation_refusal() or rules.rotation_ceiling_refusal(request.user, key)
        context = self._page_context(
            request,
            "Rotate API key",
            object=key,
            original=key,
            form=form,
            error=error or refusal or "",
            can_submit=refusal is None,
        )
        return no_store(self._render(request, self.rotate_template, context))

    # Usage CSV ----------------------------------------------------------------------------

    @method_decorator(require_GET)
    def usage_csv_view(self, request: HttpRequest, object_id: str) -> StreamingHttpResponse:
        """Every retained hourly row of one key (hour in UTC, endpoint, requests, errors),
        oldest first, streamed so a key with 90 days of rows costs no memory. The key is named
        by public id only."""
        key = self._key_for(request, object_id, lambda request, key: True)
        rows = (
            (hour.strftime("%Y-%m-%dT%H:00:00Z"), endpoint, requests, errors)
            for hour, endpoint, requests, errors in iter_hourly_rows(key)
        )
        response = StreamingHttpResponse(
            csv_lines(["hour_utc", "endpoint", "requests", "errors"], rows),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="usage-{crypto.PREFIX}_{key.public_id}.csv"'
        )
        response["Cache-Control"] = "no-store"
        return response
