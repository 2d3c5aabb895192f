"""The key page's "who is calling" parts: the Clients and Recent errors panels, the rotation
cutover panel, the used / unused marks of the permission matrix, and the "Remove unused
permissions" page (confirmation on GET, the change on POST through ``services.key_update``,
audited as a scope change). A mixin of ``APIKeyAdmin``, like ``views.KeyAdminViews``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from audit.actors import Actor

from .. import services
from ..conf import key_settings
from ..models import APIKey
from ..scopes import describe
from ..usage import insights
from ..usage.transport import Shipment
from .display import scope_usage


def callers_context(
    request: HttpRequest, key: APIKey, shipment: Shipment, *, can_change: bool, can_revoke: bool
) -> dict[str, Any]:
    """The key page's context for the panels (one HSCAN, read by the caller, shared)."""
    review = insights.scope_review(key, shipment=shipment)
    remove_url = (
        reverse("admin:keys_apikey_remove_unused", args=[key.pk])
        if can_change and key.edit_refusal() is None
        else ""
    )
    cutover = insights.cutover(key)
    when = datetime.fromisoformat
    return {
        "clients": [
            {**c, "first": when(c["first_seen"]), "last": when(c["last_seen"])}
            for c in insights.key_clients(key, shipment)
        ],
        "recent_errors": [
            {**e, "when": when(e["at"])} for e in insights.key_recent_errors(key, shipment)
        ],
        "clients_limit": key_settings.CLIENTS_PER_KEY,
        "errors_limit": key_settings.RECENT_ERRORS_PER_KEY,
        "retention_days": key_settings.USAGE_RETENTION_DAYS,
        "scope_usage": scope_usage(review, remove_url),
        "cutover": cutover,
        "cutover_revoke_url": (
            reverse("admin:keys_apikey_revoke", args=[cutover["old"].pk])
            if cutover and can_revoke
            else ""
        ),
    }


class RemoveUnusedForm(forms.Form):
    """The permissions the admin saw listed as unused: only those are removed."""

    scope = forms.MultipleChoiceField(choices=[])

    def __init__(self, *args: Any, unused: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = [(s, s) for s in unused]


class CallerAdminViews:
    """The extra page of ``APIKeyAdmin`` that removes unused permissions."""

    remove_unused_template = "admin/keys/apikey/remove_unused_confirmation.html"

    admin_site: admin.AdminSite
    opts: Any

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<path:object_id>/remove-unused/",
                self.admin_site.admin_view(self.remove_unused_view),
                name=f"{self.opts.app_label}_{self.opts.model_name}_remove_unused",
            ),
            *super().get_urls(),  # type: ignore[misc]
        ]

    def remove_unused_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._key_for(request, object_id, self.has_change_permission)  # type: ignore[attr-defined]
        review = insights.scope_review(key)
        refusal = key.edit_refusal() or review.removal_refusal()
        form = RemoveUnusedForm(
            request.POST if request.method == "POST" else None, unused=review.unused
        )
        if request.method == "POST" and refusal is None and form.is_valid():
            confirmed = form.cleaned_data["scope"]
            try:
                services.key_update(
                    key=key,
                    data={"scopes": review.pruned(key.scopes, only=confirmed)},
                    actor=Actor.from_request(request),
                )
            except services.KeyServiceError as exc:
                refusal = str(exc)
            else:
                self.message_user(  # type: ignore[attr-defined]
                    request,
                    f"Removed {len(confirmed)} unused permission"
                    f"{'s' if len(confirmed) != 1 else ''} from “{key.name}”: "
                    f"{', '.join(confirmed)}. Requests that need them now get 403 Forbidden.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:keys_apikey_change", args=[key.pk]))
        if request.method == "POST" and refusal is None and not form.is_valid():
            refusal = (
                "The unused permissions changed since this page was shown (a request used one, "
                "or someone edited the key). Check the list below and confirm again."
            )
            form = RemoveUnusedForm(unused=review.unused)
        context = self._page_context(  # type: ignore[attr-defined]
            request,
            "Remove unused permissions",
            object=key,
            original=key,
            review=review,
            kept=describe(review.pruned(key.scopes)),
            error=refusal or "",
            can_submit=not review.removal_refusal() and not key.edit_refusal(),
        )
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.remove_unused_template, context)
